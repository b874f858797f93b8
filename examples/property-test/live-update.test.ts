// State survives live update: random operations from dom0 and guest
// connections, live updates in the middle (transactions left open across
// them), the same replies, events and state as a daemon never updated.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffSnapshots, liveUpdateProperty, snapshot, spawnSim, startSim } from 'xenstored-sim/testing';

describe('live update preserves the state', () => {
  it('in process', async () => {
    await fc.assert(liveUpdateProperty(() => startSim()), { numRuns: 10 });
  });

  it('in a spawned daemon (real re-exec)', async () => {
    await fc.assert(liveUpdateProperty(() => spawnSim(), { maxCommands: 5 }), { numRuns: 2 });
  }, 60_000);

  it('names a node another client changed between the snapshots', async () => {
    const sim = await startSim();
    try {
      const [a, b] = [await sim.client(), await sim.client()];
      await a.write('/vm/name', 'one');
      const tx = await a.startTransaction();
      await tx.write('/vm/state', 'running');
      const before = await snapshot(sim);
      await b.write('/vm/name', 'two');
      await sim.liveUpdate();
      expect(diffSnapshots(before, await snapshot(sim))).toEqual(['node /vm/name: value "one" -> "two"']);
      await tx.commit();
      expect(await a.readString('/vm/state')).toBe('running');
    } finally {
      await sim.stop();
    }
  });
});
