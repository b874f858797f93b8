/**
 * The store reads time only through the clock in its options: a requester's
 * `transactionsSince` is the injected clock's reading when its count of open
 * transactions last went from 0 to 1, and 0 while it has none open.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPAT } from '../../src/store/compat.js';
import { Store } from '../../src/store/store.js';
import { endTransaction, startTransaction } from '../../src/store/transaction-ops.js';

type Step = { kind: 'tick'; ms: number } | { kind: 'start' } | { kind: 'end'; pick: number; commit: boolean };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 10_000 }) }),
  fc.record({ kind: fc.constant('start' as const) }),
  fc.record({ kind: fc.constant('end' as const), pick: fc.nat(), commit: fc.boolean() }),
);

describe('store clock', () => {
  it('transactionsSince follows the injected clock, never the wall clock', () => {
    fc.assert(fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      let time = 1_000;
      const store = new Store({ compat: COMPAT.master, now: () => time });
      const client = store.addSocketClient();
      let since = 0; // the model
      for (const s of steps) {
        if (s.kind === 'tick') time += s.ms;
        else if (s.kind === 'start') {
          if (client.transactions.size === 0) since = time;
          startTransaction(store, client);
        } else {
          const open = [...client.transactions.values()];
          if (open.length === 0) continue;
          endTransaction(store, client, open[s.pick % open.length]!, s.commit);
          if (client.transactions.size === 0) since = 0;
        }
        expect(client.transactionsSince).toBe(since);
      }
    }));
  });
});
