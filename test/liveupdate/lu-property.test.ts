/**
 * Property: an in-process live update (liveUpdateInProcess) is invisible on
 * the wire. Random multi-connection sequences — 2–5 dom0 socket clients and
 * 1–2 guest domains introduced by dom0, whose guest clients connect through
 * <rundir>/domain/<domid> — run on two fresh daemons side by side: one gets
 * live updates at random points (between requests, while transactions are
 * open, while a client has sent only the first k bytes of a request, while
 * pipelined requests still sit unread in the kernel), the other never. Every
 * connection's full byte transcript (replies and watch events, in order)
 * must be identical in the two runs.
 *
 * Determinism: commands run one at a time and each waits for its reply
 * before the next command starts, so which events a connection receives and
 * where they fall between its replies cannot depend on timing. A half-sent
 * request is completed (and its reply awaited) before that connection's next
 * command. The drain step completes every half-sent request and then sends a
 * barrier request on every connection: the daemon queues an event before any
 * later reply on the same connection, so once a barrier's reply is in, every
 * event caused by an earlier command is too. Finally each world walks its
 * whole tree (DIRECTORY, READ, GET_PERMS) on the first connection, which puts
 * the final state into the transcript as well.
 *
 * Environment: LU_PROP_RUNS (default 400: 20-40 s on 2 cores), LU_PROP_SEED (replay a failure),
 * LU_PROP_PATH (with the seed: the shrunk counterexample's path).
 */
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Frame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MessageType as T, messageTypeName } from '../../src/wire/vocabulary.js';
import { requests } from '../../src/testing/arbitraries.js';
import { payloadBytes } from '../../src/testing/operations.js';
import { startSimWithDaemon, type InProcessSim } from '../../src/testing/start-sim.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { waitFor } from '../helpers/wait.js';

const NUM_RUNS = Number(process.env.LU_PROP_RUNS ?? 400);
const SEED = process.env.LU_PROP_SEED === undefined ? undefined : Number(process.env.LU_PROP_SEED);
const REPLY_TIMEOUT_MS = 5_000;

/** A transcript as readable lines, for a useful diff when two differ. */
function describeTranscript(chunks: Buffer[]): string[] {
  const reader = new FrameReader(1 << 20);
  const lines = reader.push(Buffer.concat(chunks)).map(
    (f) => `${messageTypeName(f.type)} req=${f.reqId} tx=${f.txId} ${JSON.stringify(f.payload.toString('latin1'))}`,
  );
  const rest = reader.unconsumed();
  if (rest.length > 0) lines.push(`<${rest.length} trailing bytes>`);
  return lines;
}

// --- the commands --------------------------------------------------------------------

interface Op {
  type: number;
  payload: string;
  /**
   * 0: no transaction; n > 0: the connection's open transaction n-1 (mod count);
   * -1: an id that is not open; -2: the connection's newest open transaction.
   */
  txSlot: number;
}

type Command =
  | { kind: 'op'; peer: number; op: Op }
  | { kind: 'lu' }
  /** Send the first k bytes (k = 1 + cut mod (len-1)), maybe let the daemon read them, maybe update; the rest goes later. */
  | { kind: 'half'; peer: number; op: Op; cut: number; settle: boolean; lu: boolean }
  /** Several requests in one write; with lu, the update happens before the daemon has read them. */
  | { kind: 'burst'; peer: number; ops: Op[]; lu: boolean }
  /** The client hangs up (its watches and transactions go), maybe an update, then it connects again. */
  | { kind: 'reconnect'; peer: number; lu: boolean };

const PATHS = ['/a', '/a/b', '/a/b/c', '/a/c', '/b', 'x', 'x/y', '/local/domain/1/x', '/local/domain/2', '/local/domain/1'];
const WATCH_PATHS = [...PATHS, '/', '@introduceDomain', '@releaseDomain'];
const TOKENS = ['t1', 't2', 'x'];

const pathArb = fc.constantFrom(...PATHS);
const txSlotArb = fc.constantFrom(0, 0, 0, 1, 1, 2, -1);

/** A request from the testing kit's shared vocabulary, in a transaction slot of this test's own (which can name an id not open). */
const opArb: fc.Arbitrary<Op> = fc.record({ req: requests({ streamable: true }), tx: txSlotArb, end: fc.constantFrom(1, 1, 1, 2, -1) }).map(({ req, tx, end }) => ({
  type: req.type,
  payload: payloadBytes(req.payload).toString('latin1'),
  txSlot: req.type === T.TRANSACTION_END ? end : req.type === T.WATCH || req.type === T.UNWATCH || req.type === T.TRANSACTION_START ? 0 : tx,
}));

const peerArb = fc.nat({ max: 99 });

/**
 * A conflict, sure to happen: a transaction reads and writes a node, another
 * connection writes that node (maybe while the first is mid-request), updates
 * may fall anywhere in between, and the transaction ends (commit or abort).
 */
const conflictArb: fc.Arbitrary<Command[]> = fc
  .record({
    a: peerArb, b: peerArb, p: pathArb, commit: fc.boolean(),
    lu: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), halfEnd: fc.boolean(), cut: fc.nat({ max: 10_000 }),
  })
  .map(({ a, b, p, commit, lu, halfEnd, cut }) => {
    const op = (peer: number, type: number, payload: string, txSlot: number): Command => ({ kind: 'op', peer, op: { type, payload, txSlot } });
    const maybeLu = (i: number): Command[] => (lu[i] ? [{ kind: 'lu' }] : []);
    const end = { type: T.TRANSACTION_END, payload: commit ? 'T\0' : 'F\0', txSlot: -2 };
    return [
      op(a, T.TRANSACTION_START, '\0', 0),
      ...maybeLu(0),
      op(a, T.READ, `${p}\0`, -2),
      op(a, T.WRITE, `${p}\0from-tx`, -2),
      ...maybeLu(1),
      op(b, T.WRITE, `${p}\0from-outside`, 0),
      ...maybeLu(2),
      halfEnd ? { kind: 'half', peer: a, op: end, cut, settle: true, lu: lu[3]! } : op(a, end.type, end.payload, end.txSlot),
    ];
  });

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('op' as const), peer: peerArb, op: opArb }), weight: 20 },
  { arbitrary: fc.constant({ kind: 'lu' as const }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant('half' as const), peer: peerArb, op: opArb, cut: fc.nat({ max: 10_000 }), settle: fc.boolean(), lu: fc.boolean() }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('burst' as const), peer: peerArb, ops: fc.array(opArb, { minLength: 2, maxLength: 4 }), lu: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('reconnect' as const), peer: peerArb, lu: fc.boolean() }), weight: 1 },
);

interface Scenario {
  compat: 'master' | '4.17';
  dom0: number;
  guests: number[];
  commands: Command[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  compat: fc.constantFrom('master' as const, '4.17' as const),
  dom0: fc.integer({ min: 2, max: 5 }),
  guests: fc.constantFrom<number[]>([1], [2], [1, 2]),
  // A few watches first, so that most runs have events to compare.
  watches: fc.array(
    fc.record({ peer: peerArb, p: fc.constantFrom(...WATCH_PATHS), t: fc.constantFrom(...TOKENS) }).map(({ peer, p, t }): Command => ({
      kind: 'op', peer, op: { type: T.WATCH, payload: `${p}\0${t}\0`, txSlot: 0 },
    })),
    { minLength: 1, maxLength: 6 },
  ),
  commands: fc.array(fc.oneof({ arbitrary: commandArb.map((c) => [c]), weight: 30 }, { arbitrary: conflictArb, weight: 1 }), { minLength: 8, maxLength: 70, size: 'max' }),
}).map(({ watches, commands, ...rest }) => ({ ...rest, commands: [...watches, ...commands.flat()] }));

// --- one daemon with its clients ------------------------------------------------------

/** One connection of a world: its wire client, every byte it received (kept across reconnects), its half-sent request. */
interface Peer {
  wire: WireClient;
  readonly transcript: Buffer[];
  /** The unsent rest of a half-sent request. */
  pending: { rest: Buffer; reqId: number; type: number; txId: number; k: number } | undefined;
}

async function connectPeer(name: string, socketPath: string, transcript: Buffer[] = []): Promise<Peer> {
  const wire = await WireClient.connect(socketPath, { name, maxPayload: 1 << 20, transcript, timeoutMs: REPLY_TIMEOUT_MS });
  return { wire, transcript, pending: undefined };
}

const worlds: World[] = [];

class World {
  sim!: InProcessSim;
  readonly peers: Peer[] = [];
  /** Open transaction ids per peer, as learnt from the replies. */
  readonly tx: number[][] = [];
  updates = 0;
  /** Updates made while some transaction was open / some request was half-sent. */
  updatesInTransaction = 0;
  updatesOnHalfFrames = 0;
  /** Sum of the k of every half-sent request not completed yet. */
  private partialBytes = 0;

  constructor(readonly name: string, readonly withUpdates: boolean) {}

  async start(s: Scenario): Promise<void> {
    this.sim = await startSimWithDaemon({ compat: s.compat });
    for (let i = 0; i < s.dom0; i++) await this.addPeer(`${this.name}/dom0#${i}`, this.sim.handle.path);
    for (const domid of s.guests) {
      await this.call(0, T.INTRODUCE, `${domid}\0${4096 + domid}\0${16 + domid}\0`);
      await this.call(0, T.MKDIR, `/local/domain/${domid}\0`);
      await this.call(0, T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0r0\0`);
      const guest = await this.addPeer(`${this.name}/dom${domid}`, path.join(this.sim.handle.rundir, 'domain', String(domid)), domid);
      await this.call(guest, T.READ, 'x\0'); // attached: the daemon answers on it
    }
  }

  /** Where each peer connects, and the guest domain it is (undefined: a dom0 socket client). */
  private readonly endpoints: { socketPath: string; domid: number | undefined }[] = [];

  private async addPeer(name: string, socketPath: string, domid?: number): Promise<number> {
    this.peers.push(await connectPeer(name, socketPath));
    this.tx.push([]);
    this.endpoints.push({ socketPath, domid });
    return this.peers.length - 1;
  }

  /** Closes a peer's connection and waits until the daemon has seen it go. */
  private async hangUp(peer: number): Promise<void> {
    const { domid } = this.endpoints[peer]!;
    const before = this.sim.daemon().connections.size;
    this.peers[peer]!.wire.close();
    const gone = () => domid === undefined
      ? this.sim.daemon().connections.size === before - 1
      : [...this.sim.daemon().connections.values()].some((c) => c.client.domid === domid && !c.transport);
    await waitFor(`the daemon to notice that ${this.peers[peer]!.wire.name} hung up`, gone, REPLY_TIMEOUT_MS, 1);
    this.tx[peer] = [];
  }

  private txId(peer: number, slot: number): number {
    if (slot === -1) return 4711;
    const open = this.tx[peer]!;
    if (slot === -2) return open.at(-1) ?? 0;
    return slot === 0 || open.length === 0 ? 0 : open[(slot - 1) % open.length]!;
  }

  private learn(peer: number, type: number, txId: number, reply: Frame): void {
    if (type === T.TRANSACTION_START && reply.type === T.TRANSACTION_START) {
      this.tx[peer]!.push(Number.parseInt(reply.payload.toString('latin1'), 10));
    } else if (type === T.TRANSACTION_END && txId !== 0) {
      // The end of a transaction, committed or not (EAGAIN included), closes it.
      const err = reply.type === T.ERROR ? reply.payload.toString('latin1') : '';
      if (!err.startsWith('ENOENT') && !err.startsWith('EINVAL')) this.tx[peer] = this.tx[peer]!.filter((t) => t !== txId);
    }
  }

  liveUpdate(): void {
    if (!this.withUpdates) return;
    if (this.tx.some((open) => open.length > 0)) this.updatesInTransaction++;
    if (this.peers.some((p) => p.pending)) this.updatesOnHalfFrames++;
    this.sim.liveUpdateNow();
    this.updates++;
  }

  /** Sends the rest of a half-sent request and waits for its reply. */
  private async complete(peer: number): Promise<void> {
    const p = this.peers[peer]!;
    const pending = p.pending;
    if (!pending) return;
    p.pending = undefined;
    this.recountPartial();
    p.wire.sendRaw(pending.rest);
    const reply = await p.wire.reply(pending.reqId, `the completed half-sent ${messageTypeName(pending.type)}`);
    this.learn(peer, pending.type, pending.txId, reply);
  }

  private recountPartial(): void {
    this.partialBytes = 0;
    for (const p of this.peers) if (p.pending) this.partialBytes += p.pending.k;
  }

  async call(peer: number, type: number, payload: string, txId = 0): Promise<Frame> {
    await this.complete(peer);
    const p = this.peers[peer]!;
    const { reqId, bytes } = p.wire.frame(type, payload, txId);
    p.wire.sendRaw(bytes);
    const reply = await p.wire.reply(reqId, `the reply to ${messageTypeName(type)} ${JSON.stringify(payload)}`);
    this.learn(peer, type, txId, reply);
    return reply;
  }

  /** Waits until the daemon holds exactly the bytes of every half-sent request (they travel in the stream). */
  private async settled(): Promise<void> {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      let held = 0;
      for (const conn of this.sim.daemon().connections.values()) held += conn.reader.unconsumed().length;
      if (held === this.partialBytes) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: the daemon holds ${held} bytes of partial requests, expected ${this.partialBytes}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  async run(c: Command): Promise<void> {
    const n = this.peers.length;
    switch (c.kind) {
      case 'lu':
        this.liveUpdate();
        return;
      case 'op': {
        const peer = c.peer % n;
        await this.complete(peer);
        await this.call(peer, c.op.type, c.op.payload, this.txId(peer, c.op.txSlot));
        return;
      }
      case 'half': {
        const peer = c.peer % n;
        await this.complete(peer);
        const p = this.peers[peer]!;
        const txId = this.txId(peer, c.op.txSlot);
        const { reqId, bytes } = p.wire.frame(c.op.type, c.op.payload, txId);
        const k = 1 + (c.cut % (bytes.length - 1));
        p.wire.sendRaw(bytes.subarray(0, k));
        p.pending = { rest: bytes.subarray(k), reqId, type: c.op.type, txId, k };
        this.recountPartial();
        if (c.settle) await this.settled();
        if (c.lu) this.liveUpdate();
        return;
      }
      case 'reconnect': {
        const peer = c.peer % n;
        await this.complete(peer);
        const old = this.peers[peer]!;
        await this.hangUp(peer);
        if (c.lu) this.liveUpdate();
        this.peers[peer] = await connectPeer(old.wire.name, this.endpoints[peer]!.socketPath, old.transcript);
        return;
      }
      case 'burst': {
        const peer = c.peer % n;
        await this.complete(peer);
        const p = this.peers[peer]!;
        const sent = c.ops.map((op) => {
          const txId = this.txId(peer, op.txSlot);
          return { op, txId, ...p.wire.frame(op.type, op.payload, txId) };
        });
        p.wire.sendRaw(Buffer.concat(sent.map((s) => s.bytes)));
        // Same tick: the daemon has not read a byte of them yet.
        if (c.lu) this.liveUpdate();
        for (const s of sent) this.learn(peer, s.op.type, s.txId, await p.wire.reply(s.reqId, `the reply to the burst's ${messageTypeName(s.op.type)}`));
        return;
      }
    }
  }

  /** Completes every half-sent request, then a barrier request on every connection. */
  async drain(): Promise<void> {
    for (let i = 0; i < this.peers.length; i++) await this.complete(i);
    for (let i = 0; i < this.peers.length; i++) await this.call(i, T.GET_DOMAIN_PATH, `${i}\0`);
  }

  /** Reads the whole tree on the first connection: the final state goes into its transcript. */
  async walk(node = '/'): Promise<void> {
    await this.call(0, T.READ, `${node}\0`);
    await this.call(0, T.GET_PERMS, `${node}\0`);
    const dir = await this.call(0, T.DIRECTORY, `${node}\0`);
    if (dir.type !== T.DIRECTORY) return;
    for (const child of dir.payload.toString('latin1').split('\0').filter(Boolean)) {
      await this.walk(node === '/' ? `/${child}` : `${node}/${child}`);
    }
  }

  private stopped = false;

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers) p.wire.close();
    await this.sim?.handle.stop();
  }
}

afterEach(async () => {
  for (const w of worlds.splice(0)) await w.stop();
});

interface Figures {
  updates: number;
  inTransaction: number;
  onHalfFrames: number;
  events: number;
  conflicts: number;
}

/** Runs the scenario on both daemons, command by command, and compares every transcript. */
async function check(s: Scenario): Promise<Figures> {
  const plain = new World('plain', false);
  const updated = new World('updated', true);
  worlds.push(plain, updated);
  try {
    await plain.start(s);
    await updated.start(s);
    for (const c of s.commands) {
      await plain.run(c);
      await updated.run(c);
    }
    // One more update with every half-sent request still pending, before the drain.
    updated.liveUpdate();
    await plain.drain();
    await updated.drain();
    await plain.walk();
    await updated.walk();
    for (let i = 0; i < plain.peers.length; i++) {
      const a = plain.peers[i]!;
      const b = updated.peers[i]!;
      expect(b.wire.closed, `${b.wire.name} was disconnected`).toBe(false);
      expect(a.wire.closed, `${a.wire.name} was disconnected`).toBe(false);
      const same = Buffer.concat(a.transcript).equals(Buffer.concat(b.transcript));
      if (!same) expect(describeTranscript(b.transcript), `transcript of connection ${i}`).toEqual(describeTranscript(a.transcript));
      expect(same, `byte transcript of connection ${i}`).toBe(true);
    }
    const events = updated.peers.reduce((n, p) => n + describeTranscript(p.transcript).filter((l) => l.startsWith('WATCH_EVENT')).length, 0);
    const conflicts = updated.peers.reduce((n, p) => n + describeTranscript(p.transcript).filter((l) => l.startsWith('ERROR') && l.includes('EAGAIN')).length, 0);
    return { updates: updated.updates, inTransaction: updated.updatesInTransaction, onHalfFrames: updated.updatesOnHalfFrames, events, conflicts };
  } finally {
    worlds.splice(worlds.indexOf(plain), 2);
    await plain.stop();
    await updated.stop();
  }
}

describe('in-process live update is invisible on the wire (property)', () => {
  it('a hand-written scenario: update mid-transaction, with half-sent and unread requests', async () => {
    const op = (type: number, payload: string, txSlot = 0): Op => ({ type, payload, txSlot });
    const { updates } = await check({
      compat: 'master',
      dom0: 2,
      guests: [1],
      commands: [
        { kind: 'op', peer: 1, op: op(T.WATCH, '/a\0t1\0') },
        { kind: 'op', peer: 2, op: op(T.WATCH, 'x\0t2\0') },
        { kind: 'op', peer: 0, op: op(T.WRITE, '/a/b\0one') },
        { kind: 'op', peer: 0, op: op(T.TRANSACTION_START, '\0') },
        { kind: 'op', peer: 0, op: op(T.READ, '/a/b\0', 1) },
        { kind: 'op', peer: 0, op: op(T.WRITE, '/a/c\0in-tx', 1) },
        { kind: 'lu' },
        { kind: 'op', peer: 2, op: op(T.TRANSACTION_START, '\0') },
        { kind: 'op', peer: 2, op: op(T.WRITE, 'x/y\0guest', 1) },
        { kind: 'half', peer: 1, op: op(T.WRITE, '/a/b\0two'), cut: 7, settle: true, lu: true },
        { kind: 'half', peer: 2, op: op(T.TRANSACTION_END, 'T\0', 1), cut: 20, settle: true, lu: true },
        { kind: 'burst', peer: 0, ops: [op(T.READ, '/a/c\0', 1), op(T.TRANSACTION_END, 'T\0', 1), op(T.DIRECTORY_PART, '/a\x000\0')], lu: true },
        { kind: 'op', peer: 1, op: op(T.WRITE, '/local/domain/1/x\0from-dom0') },
        { kind: 'lu' },
      ],
    });
    expect(updates).toBe(6);
  });

  it('random operation sequences with live updates at random points', async () => {
    let runs = 0;
    let commands = 0;
    const sum: Figures = { updates: 0, inTransaction: 0, onHalfFrames: 0, events: 0, conflicts: 0 };
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const r = await check(s);
        runs++;
        for (const k of Object.keys(sum) as (keyof Figures)[]) sum[k] += r[k];
        commands += s.commands.length;
      }),
      { numRuns: NUM_RUNS, ...(SEED === undefined ? {} : { seed: SEED }), ...(process.env.LU_PROP_PATH ? { path: process.env.LU_PROP_PATH } : {}) },
    );
    console.log(
      `lu-property: ${runs} runs (shrinking included), ${commands} commands, ${sum.updates} live updates ` +
        `(${sum.inTransaction} with a transaction open, ${sum.onHalfFrames} with a request half-sent), ` +
        `${sum.events} watch events and ${sum.conflicts} EAGAIN replies compared, ${Date.now() - started} ms`,
    );
  }, 180_000);
});
