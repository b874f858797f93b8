/**
 * A guest that pipelines requests and never reads cannot keep the daemon
 * from anyone else: like C xenstored (4.17 and master), the daemon stops
 * taking its requests while `outstanding` (20) of them have replies or
 * watch events not yet sent, and serves the others meanwhile.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { waitFor } from '../helpers/wait.js';
import type { WireClient } from '../../src/testing/wire-client.js';

tearDownAfterEach();

const DOMID = 5;
const OUTSTANDING_QUOTA = 20;

async function introduceGuest(d: Daemon, dom0: WireClient): Promise<WireClient> {
  await dom0.call(T.WRITE, `/local/domain/${DOMID}\0`);
  await dom0.call(T.SET_PERMS, `/local/domain/${DOMID}\0n${DOMID}\0`);
  expect((await dom0.call(T.INTRODUCE, `${DOMID}\x001\x005\0`)).text).toBe('OK\0');
  return connect(path.join(d.options.rundir, 'domain', String(DOMID)));
}

function guestConnection(d: Daemon) {
  return [...d.connections.values()].find((c) => c.client.domid === DOMID && c.client.domain !== undefined)!;
}

const writes = (from: number, count: number) => Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame({
  type: T.WRITE, reqId: 1000 + from + i, txId: 0, // A hundred children per directory keeps each under the node-size quota.
  payload: Buffer.from(`data/b${Math.floor((from + i) / 100)}/k${from + i}\0v`, 'latin1'),
})));

describe.each([['master', []], ['4.17', ['--compat', '4.17']]])('%s: a guest with 127 watches pipelining writes it never reads', (_name, args) => {
  it('is stalled at the outstanding limit while dom0 is answered, with its backlog bounded', async () => {
    const d = await startDaemon(args);
    const dom0 = await connect(d.options.socketPath);
    const guest = await introduceGuest(d, dom0);
    for (let i = 0; i < 127; i++) expect((await guest.call(T.WATCH, `data\0t${i}\0`)).text).toBe('OK\0');
    guest.received.length = 0;
    guest.socket.pause(); // never read: the socket fills, then the daemon's queue
    const conn = guestConnection(d);
    const total = 900;
    for (let batch = 0; batch < total; batch += 100) guest.sendRaw(writes(batch, 100));

    await waitFor('the guest to reach its outstanding limit', () => conn.outstanding >= OUTSTANDING_QUOTA, 20_000);
    // dom0 is served while the guest waits: the guest's writes are not all done before, during or after.
    for (let i = 0; i < 50; i++) expect((await dom0.call(T.READ, `/local/domain/${DOMID}\0`)).text).toBe('');
    const nodesBefore = d.store.domains.get(DOMID)!.nodeCount;
    for (let i = 0; i < 50; i++) expect((await dom0.call(T.READ, `/local/domain/${DOMID}\0`)).text).toBe('');
    expect(d.store.domains.get(DOMID)!.nodeCount).toBe(nodesBefore);
    expect(nodesBefore).toBeLessThan(total);
    expect(conn.outstanding).toBeGreaterThanOrEqual(OUTSTANDING_QUOTA);
    expect(conn.outputBacklog).toBeLessThan(4 << 20);

    // Once it reads, every write is answered, in order.
    guest.socket.resume();
    const replies = () => guest.received.filter((f) => f.type !== T.WATCH_EVENT);
    await waitFor('a reply to every write', () => replies().length === total, 30_000);
    expect(replies().map((f) => f.reqId)).toEqual(Array.from({ length: total }, (_, i) => 1000 + i));
    expect(replies().findIndex((f) => f.type !== T.WRITE)).toBe(-1);
  }, 60_000);
});

describe('watch-event timeout (-w watch-event=S)', () => {
  it('drops the events a guest has not taken after S seconds; replies are kept', async () => {
    const d = await startDaemon(['-w', 'watch-event=1']);
    const dom0 = await connect(d.options.socketPath);
    const guest = await introduceGuest(d, dom0);
    expect((await guest.call(T.WRITE, `big\0${'x'.repeat(2000)}`)).text).toBe('OK\0');
    expect((await guest.call(T.WATCH, 'ctl\0tok\0')).text).toBe('OK\0');
    expect(await guest.event()).toBe('ctl\0tok\0');
    guest.socket.pause();
    const conn = guestConnection(d);
    // Big replies it does not read fill its socket, so later output waits in the daemon.
    const reads = Buffer.concat(Array.from({ length: 400 }, (_, i) => encodeFrame({ type: T.READ, reqId: 100 + i, txId: 0, payload: Buffer.from('big\0') })));
    guest.sendRaw(reads);
    await waitFor('the guest to reach its outstanding limit', () => conn.outstanding >= OUTSTANDING_QUOTA, 20_000);
    await dom0.call(T.WRITE, `/local/domain/${DOMID}/ctl\0changed`);
    const backlog = conn.outputBacklog;
    // The event goes after a second: the backlog shrinks without the guest reading anything.
    await waitFor('the expired event to go', () => conn.outputBacklog < backlog, 10_000);
    guest.socket.resume();
    const last = guest.send(T.READ, 'ctl\0');
    await guest.take((f) => f.reqId === last, 30_000);
    expect(guest.received.filter((f) => f.type === T.WATCH_EVENT)).toEqual([]);
    expect(guest.received.filter((f) => f.type === T.READ)).toHaveLength(400);
  }, 40_000);
});

describe('a guest transaction rewriting 980 nodes under 127 of its watches', () => {
  it('commits, and dom0 is answered while the event fan-out waits for the guest', async () => {
    const d = await startDaemon();
    const dom0 = await connect(d.options.socketPath);
    const guest = await introduceGuest(d, dom0);
    const nodes = 980;
    const node = (i: number) => `data/b${i % 10}/n${i}`;
    for (let i = 0; i < nodes; i++) guest.send(T.WRITE, `${node(i)}\0old`);
    for (let i = 0; i < 127; i++) guest.send(T.WATCH, `data\0t${i}\0`);
    const tx = Number((await guest.call(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
    expect(tx).toBeGreaterThan(0);
    for (let i = 0; i < nodes; i++) guest.send(T.WRITE, `${node(i)}\0new`, tx);
    await guest.call(T.READ, `${node(0)}\0`, tx);
    guest.received.length = 0;
    guest.socket.pause();
    const conn = guestConnection(d);
    const commit = guest.send(T.TRANSACTION_END, 'T\0', tx);

    await waitFor('the commit', () => d.store.lookup(`/local/domain/${DOMID}/${node(nodes - 1)}`)?.value === 'new', 20_000);
    expect((await dom0.call(T.READ, `/local/domain/${DOMID}/${node(0)}\0`)).text).toBe('new');
    expect(conn.outputBacklog).toBeGreaterThan(0); // the fan-out is still waiting for the guest
    // Held within the guest's memory quota (the backlog limit), plus at most one write the transport holds.
    expect(conn.outputBacklog).toBeLessThanOrEqual(d.store.quotas.memory + 64 * 1024);

    guest.socket.resume();
    const reply = await guest.take((f) => f.reqId === commit && f.type !== T.WATCH_EVENT, 30_000);
    expect(reply.payload.toString('latin1')).toBe('OK\0');
    const events = guest.received.filter((f) => f.type === T.WATCH_EVENT);
    // Every event the guest's memory quota left room for, each a node it wrote, none twice.
    expect(events.length).toBeGreaterThan(10_000);
    const seen = new Set(events.map((f) => f.payload.toString('latin1')));
    expect(seen.size).toBe(events.length);
    expect([...seen].every((e) => /^data\/b\d\/n\d+\0t\d+\0$/.test(e))).toBe(true);
  }, 60_000);
});
