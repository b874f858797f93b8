/**
 * The running daemon: one store, one Connection per client, the Unix
 * sockets they arrive on (the main socket, and one per introduced guest
 * domain), and the CONTROL commands. Data flows one way: socket → frames →
 * dispatch → store → replies and events → sockets.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { dispatch } from '../protocol/dispatch.js';
import { Connection } from '../protocol/connection.js';
import { RequestCharge } from '../protocol/outstanding.js';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { FramingError } from '../protocol/frame-reader.js';
import type { HandlerRequest, Services } from '../protocol/handler.js';
import { cString } from '../protocol/payload.js';
import type { Reply } from '../protocol/reply.js';
import { bindSocket, socketTransport } from '../protocol/unix-transport.js';
import { MessageType } from '../wire/vocabulary.js';
import type { Requester } from '../store/requester.js';
import { COMPAT } from '../store/compat.js';
import { batchEvents } from '../store/events.js';
import { Store } from '../store/store.js';
import type { QuotaName } from '../store/quotas.js';
import { runControl, type ControlExtension, type ControlHost } from './control.js';
import { scratchOptions, type DaemonOptions } from './options.js';
import { ParkedGuests, type ParkedGuest, type ParkingHost } from './parked-guests.js';
import { PollWindow } from './poll-window.js';
import { writePrivateFile } from './private-files.js';
import { RequestScheduler, type RequestHost } from './request-scheduler.js';
import { accepting, claimSocketPath, ensurePrivateDir, listenMainSocket, listenOwnerOnly, prepareRunDir, removeSocketFile } from './run-dir.js';
import { RunDirLock, runLockFile } from './run-lock.js';
import { warmUpOnce, type WarmUpHost } from './warm-up.js';
import { eventLine, frameLine, logLine, TraceLog } from './trace.js';
import { overMemory, quotaFor } from '../store/quota-gate.js';

/** Output kept for a privileged client that does not read its events. */
const PRIVILEGED_EVENT_BACKLOG = 64 << 20;

/** Stop handling a client's requests while this much of its output waits. */
const OUTPUT_HIGH_WATER = 1 << 20;

export class Daemon implements Services, ControlHost, RequestHost, ParkingHost, WarmUpHost {
  readonly store: Store;
  readonly connections = new Map<number, Connection>();
  private readonly dirty = new Set<Connection>();
  private readonly domainListeners = new Map<number, net.Server>();
  /** The socket behind each attached connection (handed over by a live update). */
  private readonly sockets = new Map<Connection, net.Socket>();
  /** The guest sockets' 'end' handlers, taken off in release(): net.Socket keeps an 'end' handler of its own. */
  private readonly guestHangUps = new Map<net.Socket, () => void>();
  private mainServer: net.Server | undefined;
  private trace: TraceLog | undefined;
  private readonly pollWindow: PollWindow;
  private readonly scheduler = new RequestScheduler(this);
  /** The request being handled: its reply and the events it fires count against its sender. */
  private charge: RequestCharge | undefined;
  private readonly parkedGuests: ParkedGuests;
  readonly controlExtensions = new Map<string, ControlExtension>();
  readonly traceSwitches = new Set<string>(['obj', 'io']);
  readonly quotaMaxSeen = new Map<QuotaName, number>();
  /** Receive every trace line (requests, replies, watch events, log lines), as the trace file does. */
  readonly traceListeners = new Set<(line: string) => void>();
  /**
   * Listening sockets besides XenStore's (the sandbox page) that a live
   * update carries over, by name; after one, the new image finds their
   * descriptors in `inheritedListeners`.
   */
  readonly keptListeners = new Map<string, net.Server>();
  readonly inheritedListeners = new Map<string, number>();
  /** This daemon's hold on its run directory (taken by listen(), or handed over by a live update). */
  runLock: RunDirLock | undefined;
  /** Chunks of requests received from clients; the warm-up waits while this moves. */
  requestsReceived = 0;
  /** Closed, or released to a successor. */
  stopped = false;
  /** Requests the warm-up ran once it is over (0: it did not run in this daemon). */
  warmedUp: Promise<number> = Promise.resolve(0);

  constructor(
    readonly options: DaemonOptions,
    private readonly logLine: (line: string) => void = (l) => process.stderr.write(`xenstored-sim: ${l}\n`),
    /** False when a state stream will provide the tree. */
    initialTree = true,
  ) {
    this.store = new Store({
      compat: COMPAT[options.compat],
      quotas: options.quotas,
      softMemory: options.softMemory,
      implicitDomains: options.implicitDomains,
      keepOrphans: options.keepOrphans,
      initialTree,
    });
    this.store.events = (client, eventPath, token) => {
      const conn = this.connections.get(client.serial);
      if (!conn) return;
      conn.queueEvent(eventPath, token, this.charge);
      this.dirty.add(conn);
      if (this.tracing) this.traced(eventLine(client.serial, eventPath, token));
    };
    this.store.eventBatches = (client, batch) => {
      const conn = this.connections.get(client.serial);
      if (!conn) return;
      conn.queueEventBatch(batch, this.charge);
      this.dirty.add(conn);
      if (this.tracing) for (const [eventPath, token] of batchEvents(batch)) this.traced(eventLine(client.serial, eventPath, token));
    };
    this.pollWindow = new PollWindow(options.pollWindowUs / 1000);
    this.parkedGuests = new ParkedGuests(this, options.guestPatienceMs);
    if (options.traceFile) this.setTraceFile(options.traceFile);
    for (const client of this.store.clients.values()) if (client.domain) this.connectionFor(client);
  }

  // --- sockets ---------------------------------------------------------------

  /**
   * Binds the main socket, after checking the run directory, locking it
   * (RunDirLock) and checking that no daemon listens on the socket already
   * (a stale socket is removed), and writes the pid file.
   */
  async listen(): Promise<void> {
    const { rundir, socketPath } = this.options;
    prepareRunDir(rundir, socketPath, this.domainDir);
    const lock = await RunDirLock.acquire(rundir, () => accepting(socketPath));
    try {
      await claimSocketPath(socketPath);
      const server = net.createServer((socket) => this.acceptSocket(socket));
      await listenMainSocket(server, socketPath, (l) => this.log(l));
      this.mainServer = server;
    } catch (e) {
      lock.release();
      throw e;
    }
    this.runLock = lock;
    for (const client of this.store.clients.values()) if (client.domain) this.openDomainSocket(client);
    this.writePidFile();
    this.warmUp();
  }

  /** --pid-file, unless it names the run directory's own pid file (the lock, kept up to date by itself). */
  writePidFile(): void {
    const { pidFile } = this.options;
    if (pidFile && pidFile !== runLockFile(this.options.rundir)) writePrivateFile(pidFile, `${process.pid}\n`);
  }

  /** Adopts an already listening server (live update hands one over). */
  adoptServer(server: net.Server): void {
    this.mainServer = server;
    server.on('connection', (socket) => this.acceptSocket(socket));
    this.warmUp();
  }

  /** Runs the request path on a scratch daemon while this one is idle (see warm-up.ts). */
  private warmUp(): void {
    if (!this.options.warmUp) return;
    this.warmedUp = warmUpOnce(this, () => {
      const scratch = new Daemon(scratchOptions(this.options), () => {});
      return (socket) => scratch.acceptSocket(socket);
    });
  }

  get server(): net.Server | undefined {
    return this.mainServer;
  }

  /** A new local client: privileged, as every socket client of C xenstored. */
  acceptSocket(socket: net.Socket): Connection {
    const conn = this.connectionFor(this.store.addSocketClient());
    this.attachSocket(conn, socket);
    return conn;
  }

  /** Gives a socket client's connection its socket (new, or kept across a live update). */
  attachSocket(conn: Connection, socket: net.Socket): void {
    this.attach(conn, socket, () => this.disconnect(conn));
  }

  connectionFor(client: Requester): Connection {
    let conn = this.connections.get(client.serial);
    if (!conn) {
      const limit = client.quotaBound ? quotaFor(this.store, client, 'memory') || PRIVILEGED_EVENT_BACKLOG : PRIVILEGED_EVENT_BACKLOG;
      // C times out watch events only for unprivileged domains.
      // C (4.17 and master: send_reply, send_event) charges a guest for its
      // queued output until it is written (write_messages refunds it).
      const chargesOutput = client.quotaBound && client.domain !== undefined;
      conn = new Connection(client, limit, client.privileged ? 0 : this.options.watchEventTimeoutMs, chargesOutput);
      const settled = conn;
      conn.onRequestSettled = () => this.scheduler.wake(settled);
      conn.onDrained = () => this.scheduler.wake(settled);
      this.connections.set(client.serial, conn);
    }
    return conn;
  }

  private attach(conn: Connection, socket: net.Socket, closed: () => void): void {
    conn.transport = socketTransport(socket);
    this.sockets.set(conn, socket);
    bindSocket(socket, {
      data: (chunk) => this.receive(conn, chunk),
      closed: () => {
        if (this.sockets.get(conn) !== socket) return;
        this.sockets.delete(conn);
        closed();
      },
    });
    this.dirty.add(conn);
    this.flush();
  }

  socketOf(conn: Connection): net.Socket | undefined {
    return this.sockets.get(conn);
  }

  /**
   * Lets go of every socket and listener without closing them, so that a
   * successor can take them over; this daemon is inert afterwards.
   */
  release(): void {
    this.stopped = true;
    this.parkedGuests.handOver();
    for (const conn of this.connections.values()) {
      // Whatever this daemon held back is in the dump; the successor reads on.
      conn.startReading();
      conn.transport = undefined;
    }
    for (const socket of this.sockets.values()) {
      for (const event of ['data', 'close', 'error'] as const) socket.removeAllListeners(event);
      const hangUp = this.guestHangUps.get(socket);
      if (hangUp) socket.off('end', hangUp);
      socket.pause();
    }
    this.guestHangUps.clear();
    for (const server of [this.mainServer, ...this.domainListeners.values()]) server?.removeAllListeners('connection');
    this.sockets.clear();
    this.trace?.close();
    this.trace = undefined;
  }

  /** Bytes from a client: answer the complete requests the scheduler allows, then send. */
  receive(conn: Connection, chunk: Buffer): void {
    this.requestsReceived++;
    let frames: Frame[];
    try {
      frames = conn.reader.push(chunk);
    } catch (e) {
      if (!(e instanceof FramingError)) throw e;
      this.log(`connection ${conn.client.serial}: ${e.message}; dropping it`);
      this.protocolError(conn);
      return;
    }
    this.scheduler.received(conn, frames);
    this.pollWindow.activity(conn);
  }

  /**
   * C's limits on serving a client: a guest with `outstanding` requests
   * whose output is not yet sent waits (C 4.17 and master alike), and so
   * does any client with a large backlog of output. A guest at its memory
   * quota with output still unsent waits too (C's domain_can_read), until
   * it reads or its memory drops; one at its quota through what it stores
   * alone is served (a known limit: C stops reading it too).
   */
  mayServe(conn: Connection): boolean {
    if (conn.outputBacklog >= OUTPUT_HIGH_WATER) return false;
    if (!conn.client.quotaBound) return true;
    const quota = quotaFor(this.store, conn.client, 'outstanding');
    if (quota > 0 && conn.outstanding >= quota) return false;
    return conn.outputBacklog === 0 || !overMemory(this.store, conn.client, conn.client.domid, 0);
  }

  outputProduced(conn: Connection): number {
    return conn.outputProduced;
  }

  handle(conn: Connection, frame: Frame): void {
    this.charge = new RequestCharge(conn);
    try {
      this.handleFrame(conn, frame);
    } finally {
      this.charge = undefined;
    }
    // C writes to a guest's ring between requests, as room allows: what
    // it charges a guest is the output still queued after that.
    for (const dirty of this.dirty) if (dirty.chargesOutput) dirty.flush();
    this.scheduler.wakeAll();
  }

  private handleFrame(conn: Connection, frame: Frame): void {
    if (this.tracing) this.traced(frameLine('IN ', conn.client.serial, frame));
    const answer = dispatch(this.store, conn.client, this, frame, (l) => this.log(l));
    if (answer.deferred) return;
    this.reply(conn, answer.frame);
    answer.after?.();
  }

  reply(conn: Connection, frame: Frame): void {
    if (this.tracing) this.traced(frameLine('OUT', conn.client.serial, frame));
    conn.queueReply(frame, this.charge);
    this.dirty.add(conn);
  }

  flush(): void {
    for (const conn of this.dirty) conn.flush();
    this.dirty.clear();
  }

  /** A framing error: a socket client is dropped, a guest loses its state. */
  private protocolError(conn: Connection): void {
    if (conn.client.domain) this.detachGuest(conn);
    else conn.transport?.close();
  }

  dropConnection(conn: Connection): void {
    this.disconnect(conn);
  }

  private disconnect(conn: Connection): void {
    this.store.removeClient(conn.client);
    this.forgetConnection(conn);
  }

  /** Drops a closed connection's queues, releasing the requests its events counted against. */
  private forgetConnection(conn: Connection): void {
    this.connections.delete(conn.client.serial);
    this.dirty.delete(conn);
    this.scheduler.forget(conn);
    conn.reset();
  }

  // --- guest domains ---------------------------------------------------------

  get rundir(): string {
    return this.options.rundir;
  }

  get domainDir(): string {
    return path.join(this.options.rundir, 'domain');
  }

  /** INTRODUCE (re)set a ring connection; make sure its socket exists. */
  connectionReset(client: Requester): void {
    const conn = this.connectionFor(client);
    this.scheduler.forget(conn);
    conn.reset();
    this.openDomainSocket(client);
  }

  /** Listens on <rundir>/domain/<domid> for the guest, or adopts a kept listener. */
  openDomainSocket(client: Requester, kept?: net.Server): void {
    const domid = client.domid;
    if (this.domainListeners.has(domid) || (!this.mainServer && !kept)) return;
    let server = kept;
    if (!server) {
      const socketPath = path.join(this.domainDir, String(domid));
      server = net.createServer();
      // The domain stays introduced either way; its guest just cannot connect.
      const cannotListen = (e: Error) => this.log(`domain ${domid}: cannot listen on ${socketPath}: ${e.message}`);
      try {
        ensurePrivateDir(this.domainDir);
        removeSocketFile(socketPath);
        listenOwnerOnly(server, socketPath, (l) => this.log(l)).catch(cannotListen);
      } catch (e) {
        cannotListen(e as Error);
      }
    }
    server.on('connection', (socket: net.Socket) => this.acceptGuest(client, socket));
    this.domainListeners.set(domid, server);
  }

  domainListener(domid: number): net.Server | undefined {
    return this.domainListeners.get(domid);
  }

  /**
   * A guest client connects to its domain's socket: it becomes the ring,
   * or, while another client holds the ring, waits for it (ParkedGuests).
   */
  private acceptGuest(client: Requester, socket: net.Socket): void {
    if (this.ringFree(client)) this.admit(client, socket);
    else this.parkedGuests.park(client, socket);
  }

  ringFree(client: Requester): boolean {
    const conn = this.connections.get(client.serial);
    return conn !== undefined && conn.transport === undefined;
  }

  admit(client: Requester, socket: net.Socket, first?: Buffer): void {
    const conn = this.connections.get(client.serial)!;
    this.attachGuest(conn, socket);
    if (first) this.receive(conn, first);
  }

  attachGuest(conn: Connection, socket: net.Socket): void {
    this.attach(conn, socket, () => {
      this.guestHangUps.delete(socket);
      if (conn.transport) this.detachGuest(conn);
    });
    // A guest never half-closes: end-of-file, or a read or write failing
    // (a guest that hangs up with output unread), means it has gone, and
    // the ring is free for the next client before 'close' comes.
    const gone = () => {
      this.guestHangUps.delete(socket);
      if (this.sockets.get(conn) !== socket) return;
      this.sockets.delete(conn);
      this.detachGuest(conn);
    };
    socket.once('end', gone);
    socket.once('error', gone);
    this.guestHangUps.set(socket, gone);
  }

  /** Guest clients waiting for their domain's ring, as a live update hands them over. */
  parkedGuestsSaved(): ParkedGuest[] {
    return this.parkedGuests.saved();
  }

  /**
   * A waiting guest client handed over by a live update: it waits on, in
   * the order restored, and is admitted at once if the ring is free.
   */
  parkGuest(client: Requester, socket: net.Socket, waitedMs: number, first: Buffer): void {
    this.parkedGuests.park(client, socket, waitedMs, first);
    this.parkedGuests.ringFreed(client);
  }

  /** Answers the refused client's first request with EBUSY, then hangs up. */
  refuse(client: Requester, socket: net.Socket, first: Buffer): void {
    this.log(`refusing a guest client: domain ${client.domid} already has a client connected`);
    const reqId = first.length >= 8 ? first.readUInt32LE(4) : 0;
    socket.end(encodeFrame({ type: MessageType.ERROR, reqId, txId: 0, payload: cString('EBUSY') }));
  }

  /** The guest client went away: its watches and transactions go too. */
  private detachGuest(conn: Connection): void {
    const transport = conn.transport;
    conn.transport = undefined;
    transport?.close();
    this.store.dropWatchesAndTransactions(conn.client);
    this.scheduler.forget(conn);
    conn.reset();
    this.parkedGuests.ringFreed(conn.client);
  }

  /** The domain's connection is gone for good (RELEASE, destruction). */
  connectionClosed(client: Requester): void {
    this.parkedGuests.dismiss(client);
    const conn = this.connections.get(client.serial);
    if (conn) {
      conn.transport?.close();
      this.forgetConnection(conn);
    }
    const server = this.domainListeners.get(client.domid);
    if (server) {
      server.close();
      this.domainListeners.delete(client.domid);
      removeSocketFile(path.join(this.domainDir, String(client.domid)));
    }
  }

  // --- control ---------------------------------------------------------------

  control(request: HandlerRequest, args: string[]): Reply {
    return runControl(this, request, args);
  }

  log(line: string): void {
    this.logLine(line);
    if (this.trace || this.traceListeners.size > 0) this.traced(logLine(line), false);
  }

  /** Is anybody reading trace lines? (Formatting them is not free.) */
  private get tracing(): boolean {
    return this.trace !== undefined || this.options.verbose || this.traceListeners.size > 0;
  }

  private traced(line: string, toStderr = this.options.verbose): void {
    this.trace?.write(line);
    if (toStderr) this.logLine(line);
    for (const listener of this.traceListeners) listener(line);
  }

  setTraceFile(file: string | undefined): void {
    this.trace?.close();
    this.trace = file === undefined ? undefined : new TraceLog(path.resolve(this.options.rundir, file));
  }

  traceFile(): string | undefined {
    return this.trace?.file;
  }

  memoryReport(): string {
    const m = process.memoryUsage();
    let nodes = 0;
    for (const domain of this.store.domains.all()) nodes += domain.nodeCount;
    return `memory report: ${nodes} nodes, ${this.connections.size} connections, rss ${m.rss} heap ${m.heapUsed}`;
  }

  /** Stops listening, closes every client and removes the sockets. */
  async close(): Promise<void> {
    this.stopped = true;
    this.parkedGuests.dismissAll();
    for (const conn of this.connections.values()) conn.transport?.close();
    for (const [domid, server] of this.domainListeners) {
      server.close();
      removeSocketFile(path.join(this.domainDir, String(domid)));
    }
    this.domainListeners.clear();
    if (this.mainServer) {
      await new Promise<void>((resolve) => this.mainServer!.close(() => resolve()));
      removeSocketFile(this.options.socketPath);
    }
    const { pidFile } = this.options;
    if (pidFile && pidFile !== runLockFile(this.options.rundir)) fs.rmSync(pidFile, { force: true });
    this.runLock?.release();
    this.runLock = undefined;
    this.trace?.close();
  }
}
