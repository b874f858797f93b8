/**
 * A commit's events queued as one segment (built as the output drains)
 * must reach the client exactly as queueing them one by one did: same
 * events, same order, same drops (duplicates still queued, the backlog
 * limit, the memory quota's room, oversized frames), same bytes counted
 * and the same outstanding-request charge, whatever is queued before and
 * after and however the output drains in between.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Connection, type Transport } from '../../src/protocol/connection.js';
import { RequestCharge, type OutstandingOwner } from '../../src/protocol/outstanding.js';
import { batchEvents, type EventBatch, type MatchedEvent } from '../../src/store/events.js';
import type { Requester } from '../../src/store/requester.js';
import type { Watch } from '../../src/store/watches.js';

const HOME = '/local/domain/5';

/** A transport that takes one write at a time: `drain()` lets the next through. */
class SteppedTransport implements Transport {
  readonly written: Buffer[] = [];
  private blocked = false;
  get writableLength(): number {
    return this.blocked ? 1 : 0;
  }
  write(bytes: Buffer): void {
    this.written.push(Buffer.from(bytes));
    this.blocked = true;
  }
  unblock(): void {
    this.blocked = false;
  }
  unsentBytes = () => 0;
  undeliveredInput = () => Buffer.alloc(0);
  pause(): void {}
  resume(): void {}
  close(): void {}
}

type Op =
  | { kind: 'event'; path: string; token: string }
  | { kind: 'batch'; batch: EventBatch }
  | { kind: 'reply' }
  | { kind: 'drain' };

const tokenArb = fc.constantFrom('t0', 't1', 't2', 'x'.repeat(60));
const watchArb: fc.Arbitrary<Watch> = fc.record({
  path: fc.constantFrom(HOME, `${HOME}/a`),
  token: tokenArb,
  relativeTo: fc.constantFrom(undefined, HOME),
  depth: fc.constant(undefined),
});
const nodeArb = fc.integer({ min: 0, max: 12 }).map((i) => `${HOME}/a/n${i}`);

const batchArb: fc.Arbitrary<EventBatch> = fc.record({
  events: fc.uniqueArray(
    fc.record({ path: nodeArb, watches: fc.array(watchArb, { minLength: 1, maxLength: 6 }), room: fc.constantFrom(16, 30, 50, Infinity) }),
    { selector: (e) => e.path, maxLength: 12 },
  ),
}).map(({ events }) => {
  // Consecutive events often fire the very same watch list, as the store shares it.
  const shared: MatchedEvent[] = events.map((e, i) => (i > 0 && i % 3 === 0 ? { ...e, watches: events[i - 1]!.watches } : e));
  return { events: shared };
});

const eventPathArb = fc.oneof(nodeArb, nodeArb.map((p) => p.slice(HOME.length + 1)));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('event' as const), path: eventPathArb, token: tokenArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('batch' as const), batch: batchArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reply' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

class Owner implements OutstandingOwner {
  outstanding = 0;
  settled = 0;
  requestSettled(): void {
    this.settled++;
  }
}

/** Runs `ops` on a connection; `lazy` queues batches as segments, otherwise event by event. */
function run(ops: Op[], limit: number, lazy: boolean) {
  const conn = new Connection({} as Requester, limit);
  const transport = new SteppedTransport();
  conn.transport = transport;
  const owner = new Owner();
  const backlogs: number[] = [];
  let reqId = 0;
  for (const op of ops) {
    const charge = new RequestCharge(owner);
    if (op.kind === 'event') conn.queueEvent(op.path, op.token, charge);
    else if (op.kind === 'reply') conn.queueReply({ type: 2, reqId: reqId++, txId: 0, payload: Buffer.from('OK\0') }, charge);
    else if (op.kind === 'drain') {
      transport.unblock();
      conn.flush();
    } else if (lazy) conn.queueEventBatch(op.batch, charge);
    else for (const [path, token] of batchEvents(op.batch)) conn.queueEvent(path, token, charge);
    backlogs.push(conn.outputBacklog, owner.outstanding);
  }
  const dumped = conn.unsentOutput(false).messages.map((b) => b.toString('latin1'));
  for (let i = 0; i < 10_000 && conn.outputBacklog > 1; i++) {
    transport.unblock();
    conn.flush();
  }
  return { written: Buffer.concat(transport.written).toString('latin1'), dumped, backlogs, outstanding: owner.outstanding, settled: owner.settled };
}

describe('a commit fan-out queued as one segment', () => {
  it('sends, drops, counts and charges exactly what queueing each event did', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.constantFrom(120, 400, 2000, 64 << 20), (ops, limit) => {
        const eager = run(ops, limit, false);
        const lazy = run(ops, limit, true);
        expect(lazy).toEqual(eager);
        expect(lazy.outstanding).toBe(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps C order: by node, then each node\'s watches in firing order', () => {
    const w = (token: string, relativeTo?: string): Watch => ({ path: HOME, token, relativeTo, depth: undefined });
    const watches = [w('b'), w('a', HOME), w('b')];
    const conn = new Connection({} as Requester, 1 << 20);
    const transport = new SteppedTransport();
    conn.transport = transport;
    conn.queueEventBatch({ events: [{ path: `${HOME}/y`, watches, room: Infinity }, { path: `${HOME}/x`, watches, room: Infinity }], });
    transport.unblock();
    conn.flush();
    const bytes = Buffer.concat(transport.written);
    const payloads: string[] = [];
    for (let at = 0; at < bytes.length; at += 16 + bytes.readUInt32LE(at + 12)) payloads.push(bytes.toString('latin1', at + 16, at + 16 + bytes.readUInt32LE(at + 12)));
    // The second watch with token b fires the same event as the first: dropped as a duplicate.
    expect(payloads).toEqual([`${HOME}/y\0b\0`, 'y\0a\0', `${HOME}/x\0b\0`, 'x\0a\0']);
  });

  it('goes whole at the watch-event timeout, settling its charge', () => {
    vi.useFakeTimers();
    try {
      const conn = new Connection({} as Requester, 1 << 20, 1000);
      const transport = new SteppedTransport();
      conn.transport = transport;
      const owner = new Owner();
      const w: Watch = { path: HOME, token: 't', relativeTo: undefined, depth: undefined };
      conn.queueReply({ type: 2, reqId: 1, txId: 0, payload: Buffer.from('OK\0') });
      conn.flush(); // the reply is written; the transport now holds it
      conn.queueEventBatch({ events: [{ path: `${HOME}/a`, watches: [w], room: Infinity }, { path: `${HOME}/b`, watches: [w], room: Infinity }], }, new RequestCharge(owner));
      conn.flush();
      expect(owner.outstanding).toBe(1);
      vi.advanceTimersByTime(1001);
      expect(owner.outstanding).toBe(0);
      expect(owner.settled).toBe(1);
      expect(conn.unsentOutput(false).messages).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});
