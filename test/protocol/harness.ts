/**
 * In-process harness around the real daemon pipeline, without sockets.
 *
 * A `Daemon` (src/daemon/daemon.ts) is built from `parseOptions` exactly as
 * the CLI does, but never listens. Socket clients are accepted through
 * `daemon.acceptSocket` with a fake socket object that records every byte
 * the daemon writes; guest domains are introduced with a real INTRODUCE
 * request and then get the same kind of recording transport attached to
 * their ring connection. Requests are encoded as wire frames and handed to
 * `daemon.receive`, so they go through the frame reader, the dispatcher,
 * the handlers, the store, the per-connection output queue (including its
 * duplicate-event suppression) and the flush, exactly like bytes from a
 * socket.
 *
 * Because the harness flushes after every request (like a client that reads
 * promptly), each `send` returns precisely what every connection received
 * because of that request, in order.
 *
 * Payload notation used by the helpers: in strings, `|` stands for one NUL
 * byte (as in the reference document). `|` is not a valid path character,
 * so there is no ambiguity for paths; values containing `|` must be given
 * as Buffers.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import type { Connection, Transport } from '../../src/protocol/connection.js';
import { encodeFrame, type Frame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MessageType, messageTypeName } from '../../src/wire/vocabulary.js';
import type { Store } from '../../src/store/store.js';
import { payloadBytes as wire, replyText, showBytes as show } from '../../src/testing/operations.js';

export type Version = 'master' | '4.17';

/** Run directories still to remove (also removed at exit if a failing test skipped close()). */
const rundirs = new Set<string>();
process.once('exit', () => {
  for (const dir of rundirs) rmSync(dir, { recursive: true, force: true });
});

export { wire, show };

export interface Msg {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Buffer;
}

export function isEvent(m: Msg): boolean {
  return m.type === MessageType.WATCH_EVENT;
}

/** Short text form of a reply: `OK`, an error name (`EACCES`), or `=` plus the payload with NULs shown as `|`. */
export const renderReply = (m: Msg): string => replyText(m);

/** Text form of an event: the raw payload with NULs as `|` (`/a/b|tok|`). */
export function renderEvent(m: Msg): string {
  return show(m.payload);
}

/** Records what the daemon writes to one client. */
class Recorder {
  private readonly reader = new FrameReader(1 << 30);
  readonly received: Msg[] = [];

  take(bytes: Buffer): void {
    for (const f of this.reader.push(bytes)) this.received.push({ type: f.type, reqId: f.reqId, txId: f.txId, payload: f.payload });
  }

  drain(): Msg[] {
    return this.received.splice(0, this.received.length);
  }
}

/** Just enough of net.Socket for Daemon.acceptSocket / bindSocket / socketTransport. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly writableLength = 0;
  constructor(private readonly recorder: Recorder) {
    super();
  }
  write(bytes: Buffer): boolean {
    this.recorder.take(bytes);
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
}

function recordingTransport(recorder: Recorder, onClose: () => void): Transport {
  return {
    write: (bytes) => recorder.take(bytes),
    writableLength: 0,
    unsentBytes: () => 0,
    undeliveredInput: () => Buffer.alloc(0),
    pause: () => {},
    resume: () => {},
    close: onClose,
  };
}

/** One client of the harness: a dom0 socket or a guest domain's ring. */
export class Conn {
  /** Set when the daemon closed / forgot this connection. */
  closed = false;
  /** Output is held back (client not reading) while set. */
  holding = false;

  constructor(
    readonly name: string,
    readonly kind: 'socket' | 'guest',
    readonly domid: number,
    readonly connection: Connection,
    readonly recorder: Recorder,
    readonly socket: FakeSocket | undefined,
    readonly transport: Transport | undefined,
  ) {}

  get serial(): number {
    return this.connection.client.serial;
  }
}

export interface SendResult {
  /** The reply to the request (undefined if none came, e.g. deferred). */
  readonly reply: Msg | undefined;
  /** The reply rendered by renderReply, or '(none)'. */
  readonly text: string;
  /** Everything the sender received for this request, in order. */
  readonly own: readonly Msg[];
  /** Events the sender received before its reply / after it. */
  readonly eventsBefore: readonly string[];
  readonly eventsAfter: readonly string[];
  /** Events received by every connection (by name) during this request, in order. */
  readonly events: ReadonlyMap<string, readonly string[]>;
}

export interface HarnessOptions {
  version?: Version;
  /** Extra daemon command-line arguments (e.g. ['-W', '3']). */
  argv?: string[];
}

export class Harness {
  readonly daemon: Daemon;
  readonly store: Store;
  readonly version: Version;
  readonly conns: Conn[] = [];
  readonly log: string[] = [];
  private readonly rundir: string;
  private nextReqId = 1;
  private admin: Conn | undefined;

  constructor(options: HarnessOptions = {}) {
    this.version = options.version ?? 'master';
    this.rundir = mkdtempSync(join(tmpdir(), 'xs-harness-'));
    rundirs.add(this.rundir);
    const opts = parseOptions(['--compat', this.version, ...(options.argv ?? [])], { XENSTORED_RUNDIR: this.rundir });
    this.daemon = new Daemon(opts, (line) => this.log.push(line));
    this.store = this.daemon.store;
  }

  /** Releases the temporary run directory (and a trace file, if opened). */
  async close(): Promise<void> {
    await this.daemon.close();
    rmSync(this.rundir, { recursive: true, force: true });
    rundirs.delete(this.rundir);
  }

  /** A new privileged local socket client. */
  socket(name = `sock${this.conns.length}`): Conn {
    const recorder = new Recorder();
    const sock = new FakeSocket(recorder);
    const connection = this.daemon.acceptSocket(sock as unknown as net.Socket);
    const conn = new Conn(name, 'socket', 0, connection, recorder, sock, undefined);
    sock.once('close', () => {
      conn.closed = true;
    });
    this.conns.push(conn);
    recorder.drain();
    return conn;
  }

  /** The socket used for set-up requests (created on first use). */
  adminConn(): Conn {
    this.admin ??= this.socket('admin');
    return this.admin;
  }

  /**
   * Introduces domain `domid` with an INTRODUCE request from `by` (default:
   * the admin socket) and returns its ring connection. Throws if the
   * INTRODUCE fails.
   */
  guest(domid: number, name = `dom${domid}`, by?: Conn): Conn {
    const r = this.send(by ?? this.adminConn(), MessageType.INTRODUCE, `${domid}|1|${10 + domid}|`);
    if (r.text !== 'OK') throw new Error(`INTRODUCE ${domid} failed: ${r.text}`);
    return this.attachGuest(domid, name);
  }

  /** Attaches a recording client to an introduced domain's ring connection. */
  attachGuest(domid: number, name = `dom${domid}`): Conn {
    const connection = [...this.daemon.connections.values()].find((c) => c.client.domain?.domid === domid);
    if (!connection) throw new Error(`domain ${domid} has no connection`);
    const existing = this.conns.find((c) => c.connection === connection && !c.closed);
    if (existing) return existing;
    const recorder = new Recorder();
    let conn: Conn | undefined;
    const transport = recordingTransport(recorder, () => {
      if (conn) conn.closed = true;
    });
    connection.transport = transport;
    conn = new Conn(name, 'guest', domid, connection, recorder, undefined, transport);
    this.conns.push(conn);
    return conn;
  }

  byName(name: string): Conn {
    const c = this.conns.find((x) => x.name === name && !x.closed) ?? this.conns.find((x) => x.name === name);
    if (!c) throw new Error(`no connection ${name}`);
    return c;
  }

  /** Stops delivering output to `conn` (it queues in the daemon, as for a client that does not read). */
  hold(conn: Conn): void {
    conn.holding = true;
    conn.connection.transport = undefined;
  }

  /** Re-attaches `conn` and returns everything that was queued for it. */
  unhold(conn: Conn): Msg[] {
    conn.holding = false;
    conn.connection.transport = conn.socket ? socketLike(conn) : conn.transport;
    this.daemon.flush();
    conn.connection.flush();
    return conn.recorder.drain();
  }

  /** Sends raw bytes on a connection (e.g. a malformed header). */
  sendBytes(conn: Conn, bytes: Buffer): Map<string, Msg[]> {
    this.daemon.receive(conn.connection, bytes);
    this.daemon.flush();
    return this.collect();
  }

  /**
   * Sends one request and returns the reply plus every event any connection
   * received because of it. `payload` uses the `|` notation when a string.
   */
  send(conn: Conn, type: number, payload: string | Buffer = '', txId = 0): SendResult {
    if (conn.closed) throw new Error(`connection ${conn.name} is closed`);
    const reqId = this.nextReqId++;
    const frame: Frame = { type, reqId, txId, payload: typeof payload === 'string' ? wire(payload) : payload };
    this.daemon.receive(conn.connection, encodeFrame(frame));
    this.daemon.flush();
    const received = this.collect();
    const own = received.get(conn.name) ?? [];
    const replies = own.filter((m) => !isEvent(m));
    if (replies.length > 1) throw new Error(`${conn.name}: more than one reply to ${messageTypeName(type)}: ${replies.map(renderReply).join(', ')}`);
    const reply = replies[0];
    if (reply) {
      // Every reply echoes req_id and tx_id; its type is the request's or ERROR.
      if (reply.reqId !== reqId || reply.txId !== txId) {
        throw new Error(`reply header mismatch: req ${reply.reqId}/${reqId} tx ${reply.txId}/${txId}`);
      }
      if (reply.type !== type && reply.type !== MessageType.ERROR) throw new Error(`reply type ${reply.type} to request type ${type}`);
    }
    for (const m of received.values()) {
      for (const e of m) {
        if (isEvent(e) && (e.reqId !== 0 || e.txId !== 0)) throw new Error('watch event with non-zero req_id/tx_id');
      }
    }
    const at = reply ? own.indexOf(reply) : own.length;
    const events = new Map<string, string[]>();
    for (const [name, msgs] of received) {
      const evs = msgs.filter(isEvent).map(renderEvent);
      if (evs.length > 0) events.set(name, evs);
    }
    return {
      reply,
      text: reply ? renderReply(reply) : '(none)',
      own,
      eventsBefore: own.slice(0, at).map(renderEvent),
      eventsAfter: own.slice(at + 1).map(renderEvent),
      events,
    };
  }

  /** Convenience: send and return only the rendered reply. */
  req(conn: Conn, type: number, payload: string | Buffer = '', txId = 0): string {
    return this.send(conn, type, payload, txId).text;
  }

  /** Starts a transaction and returns its id (throws on error). */
  txStart(conn: Conn): number {
    const r = this.send(conn, MessageType.TRANSACTION_START, '|');
    if (!r.text.startsWith('=')) throw new Error(`TRANSACTION_START: ${r.text}`);
    return Number(r.text.slice(1).replace(/\|$/, ''));
  }

  /** CONTROL request from the admin socket, e.g. control('domain', 'destroy', '5'). */
  control(...args: string[]): SendResult {
    return this.send(this.adminConn(), MessageType.CONTROL, Buffer.from(args.map((a) => `${a}\0`).join(''), 'latin1'));
  }

  /** Everything received since the last call, per connection name (held connections excluded). */
  private collect(): Map<string, Msg[]> {
    const out = new Map<string, Msg[]>();
    for (const c of this.conns) {
      if (c.holding) continue;
      const msgs = c.recorder.drain();
      if (msgs.length > 0) out.set(c.name, [...(out.get(c.name) ?? []), ...msgs]);
    }
    return out;
  }
}

function socketLike(conn: Conn): Transport {
  const sock = conn.socket!;
  return {
    write: (bytes) => sock.write(bytes),
    writableLength: 0,
    unsentBytes: () => 0,
    undeliveredInput: () => Buffer.alloc(0),
    pause: () => {},
    resume: () => {},
    close: () => sock.destroy(),
  };
}

export { MessageType };
