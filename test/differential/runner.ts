/**
 * Runs one operation sequence (op-generator.ts) against one daemon socket and
 * records a transcript; compares two transcripts; starts the daemons.
 *
 * Transcript definition
 * ---------------------
 * The run is divided into steps: a "connect" prologue, one step per op, and
 * a final "end" step. A step records, for every connection, the messages that
 * connection received during the step, in the order they arrived (replies,
 * watch events, sync replies, a close, a reply timeout). There is no
 * cross-connection order: only per-connection order is observable.
 *
 * Step for op i (sent on connection c):
 *   1. send the op's frame on c with req_id = i + 1 and the resolved tx_id;
 *   2. wait for the first non-WATCH_EVENT message on c (its reply);
 *   3. sync: on every connection that has ever had a successful WATCH in this
 *      run (including c, whose initial watch event follows the WATCH reply),
 *      send GET_DOMAIN_PATH "0" (req_id SYNC_REQ_BASE + n) and wait for its
 *      reply. A daemon has one FIFO output queue per connection and queues
 *      the events a request causes before that request's reply, so when the
 *      sync reply has arrived every event caused by the op is in too.
 *      GET_DOMAIN_PATH touches no node, no transaction and no generation.
 *   4. the step's messages are everything received since the previous step.
 * If the op's own reply does not come (connection closed or timeout), step 3
 * syncs every connection instead, so that a daemon crash is recorded as
 * "closed" on all connections in the step of the op that caused it (and not
 * whenever the other connections happen to notice).
 * The "end" step syncs every open connection, so stray late messages show.
 * Because every op waits for its reply and the events it caused, a daemon's
 * output queue is empty before the next op; C xenstored's duplicate-event
 * suppression (which depends on what is still queued) is therefore
 * deterministic within one op and never spans two ops.
 *
 * Normalisation (the only one; everything else is compared byte for byte:
 * tx ids, req ids, error names, values, directory order, event order)
 * -----------------------------------------------------------------------
 * DIRECTORY_PART generation numbers. The number at the start of a
 * successful DIRECTORY_PART reply comes from a daemon-global counter that
 * also counts things no client can see (start-up writes, TRANSACTION_START
 * in C). Its absolute value is not part of the contract; clients only
 * compare it with earlier values. Each such number is replaced by `<gen#k>`,
 * its rank among the distinct generation numbers seen in that transcript
 * (0 = smallest). Equality and relative order within a run are compared;
 * absolute values are not. (Ranks are per transcript, so they stay
 * comparable even if the two daemons' counters start at different values.)
 *
 * Not normalised but avoided by the generator, because C 4.17's answer is
 * undefined behaviour (a stale errno that differs even between two C
 * daemons fed the same sequence, or an assertion failure that kills the
 * daemon): malformed payloads of READ/MKDIR/RM/DIRECTORY/GET_PERMS,
 * RESET_WATCHES inside an open transaction, SET_PERMS on `@` paths other
 * than @introduceDomain/@releaseDomain. See op-generator.ts.
 */
import net from 'node:net';
import { encodeFrame, type Frame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import path from 'node:path';
import { MessageType, messageTypeName } from '../../src/wire/vocabulary.js';
import { startCXenstored, startGuestProxy, type GuestProxy } from '../helpers/c-xenstored.js';
import { startSim } from '../helpers/sim-daemon.js';
import {
  UNSTARTED_SLOT_BASE,
  describeOp,
  escapeBytes,
  showBytes,
  type Op,
  type OpSequence,
} from './op-generator.js';

// ---------------------------------------------------------------------------
// Transcript types

/** What a connection received, in arrival order. */
export type Received =
  | { readonly kind: 'msg'; readonly frame: Frame; readonly sync: boolean }
  | { readonly kind: 'closed' }
  | { readonly kind: 'timeout'; readonly waitingFor: number }
  | { readonly kind: 'framing-error'; readonly message: string };

export interface Step {
  /** Op index, or -1 for the connect prologue and -2 for the end step. */
  readonly index: number;
  readonly op: Op | undefined;
  /** tx_id actually sent (after resolving the op's TxRef); undefined if not sent. */
  readonly sentTxId: number | undefined;
  /** Set when the op was not sent because its connection was gone. */
  readonly skipped: boolean;
  /** perConn[c] = messages received on connection c during this step. */
  readonly perConn: readonly (readonly Received[])[];
}

export interface Transcript {
  readonly daemon: string;
  readonly connections: number;
  readonly steps: readonly Step[];
  /** Ops actually sent (not skipped). */
  readonly opsSent: number;
  /**
   * Index of the op after which every connection was gone, more than one of
   * them closed by the daemon in that step (the daemon died), if that happened.
   */
  readonly allGoneAt: number | undefined;
}

/** req_id of sync requests: SYNC_REQ_BASE + a counter (op req_ids are index + 1). */
export const SYNC_REQ_BASE = 0x40000000;

/**
 * How long to wait for one reply before giving up on a connection. Generous:
 * C can hold a guest's request for seconds (its write rate limit, a loaded
 * machine), and the wait only runs out when a reply is really missing.
 */
const REPLY_TIMEOUT_MS = 15_000;

export interface RunOptions {
  /** How long to wait for one reply before giving up on the connection (ms, default REPLY_TIMEOUT_MS). */
  replyTimeoutMs?: number;
}

// ---------------------------------------------------------------------------
// One raw connection

function openSocket(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    sock.setNoDelay?.(true);
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

class RawConn {
  private readonly reader = new FrameReader();
  private readonly log: Received[] = [];
  private readonly replies: Frame[] = [];
  private waiter: (() => void) | undefined;
  /** True once the daemon closed the connection or it became unusable. */
  dead = false;
  /** True once a WATCH on this connection got a WATCH reply: it needs syncing. */
  hasWatches = false;
  /** tx ids from successful TRANSACTION_START replies, in order (slots). */
  readonly txIds: number[] = [];
  /** The subset of txIds still open as far as the replies tell, in start order. */
  openTxIds: number[] = [];

  private constructor(private sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('close', () => this.onClose());
    // Errors (EPIPE/ECONNRESET after the daemon dropped us) end in 'close'.
    sock.on('error', () => undefined);
  }

  static async connect(path: string): Promise<RawConn> {
    return new RawConn(await openSocket(path));
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.log.push({ kind: 'framing-error', message: (err as Error).message });
      this.kill();
      return;
    }
    for (const frame of frames) {
      const sync = frame.reqId >= SYNC_REQ_BASE && frame.type !== MessageType.WATCH_EVENT;
      this.log.push({ kind: 'msg', frame, sync });
      if (frame.type !== MessageType.WATCH_EVENT) this.replies.push(frame);
    }
    this.wake();
  }

  private onClose(): void {
    if (!this.dead) this.log.push({ kind: 'closed' });
    this.dead = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Stops using the connection (after a timeout or framing error). */
  kill(): void {
    this.dead = true;
    this.sock.destroy();
    this.wake();
  }

  send(frame: Frame): void {
    this.sock.write(encodeFrame(frame));
  }

  /** The next reply (non-event message), or undefined if closed or timed out. */
  async nextReply(reqId: number, timeoutMs: number): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.replies.shift();
      if (frame) return frame;
      if (this.dead) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.log.push({ kind: 'timeout', waitingFor: reqId });
        this.kill();
        return undefined;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /**
   * The same connection slot for a new domain with the old domid: a fresh
   * ring connection. When the old one noticed its release (the simulator
   * closes the socket, C's proxy does not) is not part of the contract, so
   * its close is not recorded.
   */
  async reopen(path: string): Promise<void> {
    this.close();
    for (let i = this.log.length - 1; i >= 0; i--) if (this.log[i]!.kind === 'closed') this.log.splice(i, 1);
    this.sock = await openSocket(path);
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sock.on('close', () => this.onClose());
    this.sock.on('error', () => undefined);
    this.reader.reset();
    this.replies.length = 0;
    this.dead = false;
    this.hasWatches = false;
    this.txIds.length = 0;
    this.openTxIds = [];
  }

  /** Everything received since the last call. */
  take(): Received[] {
    return this.log.splice(0, this.log.length);
  }

  close(): void {
    this.dead = true;
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------------------
// Running a sequence

const SYNC_PAYLOAD = Buffer.from('0\0', 'latin1');

function resolveTx(op: Op, conn: RawConn): number {
  switch (op.tx.kind) {
    case 'none':
      return 0;
    case 'raw':
      return op.tx.id >>> 0;
    case 'slot':
      return conn.txIds[op.tx.slot] ?? UNSTARTED_SLOT_BASE + op.tx.slot;
    case 'open':
      return conn.openTxIds[conn.openTxIds.length - 1 - op.tx.nth] ?? 0;
  }
}

/** Updates the connection's transaction bookkeeping from an op's reply. */
function trackTransactions(conn: RawConn, op: Op, txId: number, reply: Frame): void {
  if (op.type === MessageType.TRANSACTION_START && reply.type === MessageType.TRANSACTION_START) {
    const text = reply.payload.toString('latin1');
    if (/^[0-9]+\0$/.test(text)) {
      const id = Number.parseInt(text, 10);
      conn.txIds.push(id);
      conn.openTxIds.push(id);
    }
  } else if (op.type === MessageType.TRANSACTION_END && txId !== 0) {
    // END destroys the transaction whatever the outcome, except when the
    // argument itself is rejected (EINVAL) before the transaction is looked at.
    const einval = reply.type === MessageType.ERROR && reply.payload.toString('latin1') === 'EINVAL\0';
    if (!einval) conn.openTxIds = conn.openTxIds.filter((id) => id !== txId);
  } else if (op.type === MessageType.RESET_WATCHES && reply.type === MessageType.RESET_WATCHES) {
    conn.openTxIds = [];
  }
}

/** A privileged request outside the transcript (guest set-up); its reply must be OK. */
async function adminCall(admin: RawConn, type: number, ...args: string[]): Promise<void> {
  const payload = Buffer.concat(args.map((a) => Buffer.from(`${a}\0`, 'latin1')));
  admin.send({ type, reqId: 1, txId: 0, payload });
  const reply = await admin.nextReply(1, REPLY_TIMEOUT_MS);
  if (reply?.type !== type) throw new Error(`guest set-up: ${messageTypeName(type)} ${args.join(' ')} failed`);
  admin.take();
}

/** INTRODUCE as a toolstack does it (C's shim maps the ring; the port just must not be 0). */
async function introduceGuest(daemon: Daemon, admin: RawConn, domid: number): Promise<void> {
  await adminCall(admin, MessageType.INTRODUCE, String(domid), '0', String(16 + domid));
  await daemon.guestUp(domid);
}

/** Runs `seq` against `daemon`. */
export async function runSequence(daemon: Daemon, seq: OpSequence, options: RunOptions = {}): Promise<Transcript> {
  const { socketPath } = daemon;
  const timeoutMs = options.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
  const conns: RawConn[] = [];
  const steps: Step[] = [];
  let syncCounter = 0;
  let opsSent = 0;
  let allGoneAt: number | undefined;
  let admin: RawConn | undefined;

  const syncOne = async (conn: RawConn): Promise<void> => {
    if (conn.dead) return;
    const reqId = SYNC_REQ_BASE + syncCounter++;
    conn.send({ type: MessageType.GET_DOMAIN_PATH, reqId, txId: 0, payload: SYNC_PAYLOAD });
    await conn.nextReply(reqId, timeoutMs);
  };
  const takeAll = (): Received[][] => conns.map((c) => c.take());

  try {
    // Prologue: connect one at a time (C listens with a backlog of 1) and
    // make sure each connection has been accepted before opening the next.
    for (let i = 0; i < seq.connections; i++) {
      const conn = await RawConn.connect(socketPath);
      conns.push(conn);
      await syncOne(conn);
    }
    // Guests: a home each (owned by the guest), introduced, then their ring connection.
    if (seq.guests.length > 0) admin = await RawConn.connect(socketPath);
    for (const domid of seq.guests) {
      await adminCall(admin!, MessageType.WRITE, `/local/domain/${domid}`);
      await adminCall(admin!, MessageType.SET_PERMS, `/local/domain/${domid}`, `n${domid}`);
      await introduceGuest(daemon, admin!, domid);
      const conn = await RawConn.connect(daemon.guestSocket(domid));
      conns.push(conn);
      await syncOne(conn);
    }
    steps.push({ index: -1, op: undefined, sentTxId: undefined, skipped: false, perConn: takeAll() });

    for (const [index, op] of seq.ops.entries()) {
      const conn = conns[op.conn];
      if (!conn) throw new Error(`op #${index} names connection ${op.conn} of ${seq.connections}`);
      if (conn.dead) {
        steps.push({ index, op, sentTxId: undefined, skipped: true, perConn: takeAll() });
        continue;
      }
      const txId = resolveTx(op, conn);
      const reqId = index + 1;
      conn.send({ type: op.type, reqId, txId, payload: op.payload });
      opsSent++;
      const reply = await conn.nextReply(reqId, timeoutMs);
      if (reply && reply.reqId === reqId) {
        trackTransactions(conn, op, txId, reply);
        if (op.type === MessageType.WATCH && reply.type === MessageType.WATCH) conn.hasWatches = true;
        if (op.reintroduce !== undefined && reply.type === MessageType.RELEASE) {
          const guest = conns[seq.connections + seq.guests.indexOf(op.reintroduce)]!;
          await daemon.guestDown(op.reintroduce);
          await introduceGuest(daemon, admin!, op.reintroduce);
          await guest.reopen(daemon.guestSocket(op.reintroduce));
        }
      }
      // When the op's connection is gone (dropped by the daemon, or the
      // daemon died), sync every connection, so that a daemon crash shows up
      // as "closed" on all of them within this same step.
      await Promise.all(conns.filter((c) => c.hasWatches || reply === undefined).map(syncOne));
      steps.push({ index, op, sentTxId: txId, skipped: false, perConn: takeAll() });
      // All connections gone, several of them in this very step: the daemon died.
      const closedNow = steps[steps.length - 1]!.perConn.filter((m) => m.some((r) => r.kind === 'closed')).length;
      if (allGoneAt === undefined && conns.every((c) => c.dead) && closedNow > 1) allGoneAt = index;
    }

    await Promise.all(conns.map(syncOne));
    steps.push({ index: -2, op: undefined, sentTxId: undefined, skipped: false, perConn: takeAll() });
  } finally {
    for (const c of conns) c.close();
    admin?.close();
  }
  return { daemon: daemon.name, connections: conns.length, steps, opsSent, allGoneAt };
}

// ---------------------------------------------------------------------------
// Normalisation and comparison

/** Per daemon: generation number (decimal string) → rank. */
function generationRanks(t: Transcript): Map<string, number> {
  const gens = new Set<bigint>();
  for (const step of t.steps) {
    for (const frame of dirPartReplies(step)) {
      const gen = parseGeneration(frame.payload);
      if (gen !== undefined) gens.add(gen);
    }
  }
  const sorted = [...gens].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return new Map(sorted.map((g, i) => [g.toString(), i]));
}

function* dirPartReplies(step: Step): Generator<Frame> {
  if (step.op?.type !== MessageType.DIRECTORY_PART) return;
  for (const r of step.perConn[step.op.conn] ?? []) {
    if (r.kind === 'msg' && !r.sync && r.frame.type === MessageType.DIRECTORY_PART) yield r.frame;
  }
}

function parseGeneration(payload: Buffer): bigint | undefined {
  const nul = payload.indexOf(0);
  if (nul <= 0) return undefined;
  const text = payload.subarray(0, nul).toString('latin1');
  return /^[0-9]+$/.test(text) ? BigInt(text) : undefined;
}

/** A decoded, normalised message: `key` is compared, `text` is shown. */
interface View {
  readonly key: string;
  readonly text: string;
}

interface ViewContext {
  /** The message is the reply to a DIRECTORY_PART op (normalised generation). */
  readonly dirPartReply: boolean;
}

function viewOf(r: Received, ctx: ViewContext, ranks: Map<string, number>): View {
  switch (r.kind) {
    case 'closed':
      return { key: 'CLOSED', text: 'connection closed by the daemon' };
    case 'timeout':
      return { key: `TIMEOUT ${r.waitingFor}`, text: `no reply to req ${r.waitingFor} (timeout)` };
    case 'framing-error':
      return { key: 'FRAMING', text: `framing error: ${r.message}` };
    case 'msg':
      break;
  }
  const f = r.frame;
  let payload = f.payload;
  let genNote = '';
  if (ctx.dirPartReply && f.type === MessageType.DIRECTORY_PART) {
    const gen = parseGeneration(payload);
    if (gen !== undefined) {
      const rank = ranks.get(gen.toString());
      const nul = payload.indexOf(0);
      payload = Buffer.concat([Buffer.from(`<gen#${rank}>`, 'latin1'), payload.subarray(nul)]);
      genNote = ` (raw generation ${gen})`;
    }
  }
  const head = `${messageTypeName(f.type)} req=${f.reqId} tx=${f.txId}`;
  const key = `${head} ${escapeBytes(payload)}${r.sync ? ' [sync]' : ''}`;
  let body: string;
  if (f.type === MessageType.WATCH_EVENT) {
    const parts = f.payload.toString('latin1').split('\0');
    body =
      parts.length === 3 && parts[2] === ''
        ? `path=${JSON.stringify(parts[0])} token=${JSON.stringify(parts[1])}`
        : showBytes(f.payload);
    return { key, text: `EVENT ${body}` };
  }
  body = f.type === MessageType.ERROR ? f.payload.toString('latin1').replace(/\0$/, '') : showBytes(payload);
  return { key, text: `${r.sync ? 'sync ' : ''}${head} ${body}${genNote}` };
}

export interface StepView {
  readonly label: string;
  readonly perConn: readonly (readonly View[])[];
}

/** Normalised views of every step. */
export function viewTranscript(t: Transcript): StepView[] {
  const ranks = generationRanks(t);
  return t.steps.map((step) => ({
    label: stepLabel(step),
    perConn: step.perConn.map((msgs, c) => {
      const own = step.op !== undefined && step.op.conn === c;
      let replySeen = false;
      return msgs.map((r) => {
        // The op's reply: the first non-event, non-sync message on its connection.
        const isReply = own && !replySeen && r.kind === 'msg' && !r.sync && r.frame.type !== MessageType.WATCH_EVENT;
        if (isReply) replySeen = true;
        const ctx: ViewContext = {
          dirPartReply: isReply && step.op!.type === MessageType.DIRECTORY_PART,
        };
        return viewOf(r, ctx, ranks);
      });
    }),
  }));
}

function stepLabel(step: Step): string {
  if (step.index === -1) return 'connect';
  if (step.index === -2) return 'end (final sync on every connection)';
  const tx = step.sentTxId === undefined ? '' : ` (tx_id sent: ${step.sentTxId})`;
  return `op #${step.index}: ${step.op ? describeOp(step.op) : '?'}${tx}${step.skipped ? ' — not sent, connection gone' : ''}`;
}

export interface Mismatch {
  /** Step index in the transcript (0 = connect prologue, 1 = op #0, …). */
  readonly step: number;
  /** Op index, -1 = connect, -2 = end. */
  readonly opIndex: number;
  readonly report: string;
}

/** The first step where the two transcripts differ, or undefined. */
export function compareTranscripts(a: Transcript, b: Transcript, context = 4): Mismatch | undefined {
  const va = viewTranscript(a);
  const vb = viewTranscript(b);
  const n = Math.max(va.length, vb.length);
  for (let s = 0; s < n; s++) {
    const sa = va[s];
    const sb = vb[s];
    if (sa && sb && sameStep(sa, sb)) continue;
    const stepA = a.steps[s] ?? b.steps[s];
    const lines: string[] = [];
    lines.push(`first difference at ${sa?.label ?? sb?.label}`);
    if (sa && sb && sa.label !== sb.label) lines.push(`  (${b.daemon} step: ${sb.label})`);
    const conns = Math.max(sa?.perConn.length ?? 0, sb?.perConn.length ?? 0);
    const width = Math.max(a.daemon.length, b.daemon.length);
    for (let c = 0; c < conns; c++) {
      const ma = sa?.perConn[c] ?? [];
      const mb = sb?.perConn[c] ?? [];
      const same = ma.length === mb.length && ma.every((m, i) => m.key === mb[i]!.key);
      if (same && ma.length === 0) continue;
      lines.push(`  connection ${c}${same ? ' (same)' : ' DIFFERS'}:`);
      const show = (name: string, msgs: readonly View[]): void => {
        if (msgs.length === 0) lines.push(`    ${name.padEnd(width)}: (nothing)`);
        msgs.forEach((m, i) => lines.push(`    ${(i === 0 ? name : '').padEnd(width)}${i === 0 ? ':' : ' '} ${m.text}`));
      };
      show(a.daemon, ma);
      if (!same) show(b.daemon, mb);
    }
    const before = va.slice(Math.max(1, s - context), s).map((v) => `    ${v.label}`);
    if (before.length > 0) lines.splice(1, 0, '  preceded by:', ...before);
    return { step: s, opIndex: stepA?.index ?? s - 1, report: lines.join('\n') };
  }
  return undefined;
}

function sameStep(a: StepView, b: StepView): boolean {
  if (a.perConn.length !== b.perConn.length) return false;
  return a.perConn.every((ma, c) => {
    const mb = b.perConn[c]!;
    return ma.length === mb.length && ma.every((m, i) => m.key === mb[i]!.key);
  });
}

/** Full transcript as text (for debugging a failure). */
export function formatTranscript(t: Transcript): string {
  const lines = [`transcript of ${t.daemon}:`];
  for (const v of viewTranscript(t)) {
    lines.push(`  ${v.label}`);
    v.perConn.forEach((msgs, c) => msgs.forEach((m) => lines.push(`      c${c} ← ${m.text}`)));
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Daemons: thin wrappers over the shared helpers (test/helpers/c-xenstored.ts
// and test/helpers/sim-daemon.ts), adding a display name.

export interface Daemon {
  readonly name: string;
  readonly socketPath: string;
  /** Where a client acts as guest `domid` once it is introduced. */
  guestSocket(domid: number): string;
  /** After INTRODUCE: makes the guest socket usable (C: starts the ring proxy). */
  guestUp(domid: number): Promise<void>;
  /** After RELEASE: lets go of the guest's ring (C: stops its proxy). */
  guestDown(domid: number): Promise<void>;
  /** Stops the daemon and removes its run directory. */
  stop(): Promise<void>;
}

/** C xenstored 4.17 through the xenstored-ref kit (XS_REF_KIT overrides its location), guests through its ring proxy. */
export async function startCDaemon(name = 'C'): Promise<Daemon> {
  const d = await startCXenstored();
  const proxies = new Map<number, GuestProxy>();
  const down = async (domid: number): Promise<void> => {
    await proxies.get(domid)?.stop();
    proxies.delete(domid);
  };
  return {
    name,
    socketPath: d.socketPath,
    guestSocket: (domid) => path.join(d.rundir, 'domain', String(domid)),
    guestUp: async (domid) => {
      proxies.set(domid, await startGuestProxy(d.rundir, domid));
    },
    guestDown: down,
    stop: async () => {
      await Promise.all([...proxies.keys()].map(down));
      await d.stop();
    },
  };
}

/** xenstored-sim (dist/cli/xenstored-sim.js, built by the helper if needed) with --compat. */
export async function startSimDaemon(name = 'sim', compat = '4.17'): Promise<Daemon> {
  const d = await startSim({ args: ['--compat', compat] });
  return {
    name,
    socketPath: d.socketPath,
    guestSocket: (domid) => d.domainSocket(domid),
    guestUp: () => Promise.resolve(),
    guestDown: () => Promise.resolve(),
    stop: () => d.stop(),
  };
}
