/**
 * A commit's watch events, queued per connection as one segment and built
 * as the output drains, reach real clients over the socket in C's order:
 * by node in the order the transaction first touched them, then each
 * client's watches in registration order, with duplicates (same path and
 * token) dropped; all before the committer's reply and before anything
 * later on the same connection.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { waitFor } from '../helpers/wait.js';

tearDownAfterEach();

const DOMID = 7;
const HOME = `/local/domain/${DOMID}`;

describe('a commit fanned out to a guest and to dom0', () => {
  it('delivers every event in C order, before the reply and before later events', async () => {
    const d = await startDaemon();
    const dom0 = await connect(d.options.socketPath);
    await dom0.call(T.WRITE, `${HOME}\0`);
    await dom0.call(T.SET_PERMS, `${HOME}\0n${DOMID}\0`);
    await dom0.call(T.INTRODUCE, `${DOMID}\x000\x0023\0`);
    const guest = await connect(path.join(d.options.rundir, 'domain', String(DOMID)));
    const nodes = Array.from({ length: 300 }, (_, i) => `data/d${i % 3}/n${i}`);
    for (const n of nodes) await guest.call(T.WRITE, `${n}\0old`);
    // Relative and absolute, two sharing a token (the same absolute path for both: one is a duplicate), one deeper.
    const watches = [['data', 'rel'], [`${HOME}/data`, 'abs'], [HOME, 'abs'], ['data/d1', 'd1']] as const;
    for (const [p, token] of watches) {
      await guest.call(T.WATCH, `${p}\0${token}\0`);
      expect(await guest.event()).toBe(`${p}\0${token}\0`);
    }
    await dom0.call(T.WATCH, `${HOME}/data/d2\0dom0\0`);
    expect(await dom0.event()).toBe(`${HOME}/data/d2\0dom0\0`);

    const tx = Number((await guest.call(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
    const order = [...nodes].reverse();
    for (const n of order) await guest.call(T.WRITE, `${n}\0new`, tx);
    guest.received.length = 0;
    const commit = guest.send(T.TRANSACTION_END, 'T\0', tx);
    const later = guest.send(T.WRITE, 'data/d0/later\0v'); // a node the commit did not touch: no duplicate of a queued event
    await waitFor('the reply to the later write', () => guest.received.some((f) => f.reqId === later && f.type === T.WRITE), 20_000);

    const expected: string[] = [];
    for (const n of order) {
      expected.push(`${n}\0rel\0`, `${HOME}/${n}\0abs\0`);
      if (n.startsWith('data/d1/')) expected.push(`${n}\0d1\0`);
    }
    const frames = guest.received.map((f) => (f.type === T.WATCH_EVENT ? f.payload.toString('latin1') : `reply ${f.reqId}`));
    expect(frames).toEqual([...expected, `reply ${commit}`, 'data/d0/later\0rel\0', `${HOME}/data/d0/later\0abs\0`, `reply ${later}`]);

    await waitFor('dom0 events', () => dom0.received.length >= 100, 20_000);
    expect(dom0.received.map((f) => f.payload.toString('latin1')))
      .toEqual(order.filter((n) => n.startsWith('data/d2/')).map((n) => `${HOME}/${n}\0dom0\0`));
  }, 60_000);
});
