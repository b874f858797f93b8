/**
 * An in-process handle builds its snapshot from the store's saved values,
 * not from a dump: for any state, that must be the very snapshot the dump's
 * stream gives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openWorld, operationSequences, sendOperation, startSim } from '../../src/testing/index.js';
import { snapshotOfStream } from '../../src/testing/snapshot.js';

const GUESTS = [1, 2];

describe.each(['master', '4.17'] as const)('snapshot of an in-process daemon (compat %s)', (compat) => {
  it('equals the snapshot of its dump, for random states with watches and open transactions', async () => {
    await fc.assert(
      fc.asyncProperty(
        operationSequences({ connections: 2 + GUESTS.length, guests: GUESTS, streamable: true, leaveOpen: true, maxLength: 40 }),
        fc.boolean(),
        async (ops, generations) => {
          const sim = await startSim({ compat, quotas: { nodes: 50 } });
          try {
            const world = await openWorld(sim, { guests: GUESTS });
            for (const op of ops) await sendOperation(world, op);
            const fromStream = snapshotOfStream(await sim.dump(), { generations });
            expect(await sim.snapshot({ generations })).toEqual(fromStream);
          } finally {
            await sim.stop();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
