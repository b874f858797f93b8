/**
 * The testing kit (`xenstored-sim/testing`) as a user meets it: daemons in
 * process and spawned, snapshots that compare across a live update, the
 * difference they print when something changed, and the one-call property.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertLiveUpdatePreserves, diffSnapshots, liveUpdateProperty, RequestCommand, snapshot, spawnSim, startSim,
  type SimHandle, type Snapshot,
} from '../../src/testing/index.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { REPO_ROOT } from '../helpers/sim-daemon.js';

const handles: SimHandle[] = [];
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.stop()));
});
async function started(handle: Promise<SimHandle>): Promise<SimHandle> {
  const h = await handle;
  handles.push(h);
  return h;
}

/** Two dom0 clients and a guest, a watch, and a transaction left open. */
async function busyState(sim: SimHandle) {
  const a = await sim.client();
  const b = await sim.client();
  const guest = await sim.guest(5);
  await a.write('/app/x', '1');
  await a.write('/app/y', '2');
  await guest.write('name', 'guest5');
  await b.watch('/app', 'w');
  const tx = await a.startTransaction();
  await tx.read('/app/x');
  await tx.write('/app/x', 'in-tx');
  return { a, b, guest, tx };
}

describe.each([
  ['startSim', () => startSim()],
  ['spawnSim', () => spawnSim()],
] as const)('%s', (_name, start) => {
  it('keeps the snapshot across a live update, and the open transaction commits after it', async () => {
    const sim = await started(start());
    const { a, b, guest, tx } = await busyState(sim);
    const before = await sim.snapshot({ generations: true });
    await sim.liveUpdate();
    expect(await sim.snapshot({ generations: true })).toEqual(before);

    expect(before.nodes['/local/domain/5/name']).toEqual({ value: 'guest5', perms: ['n5'], generation: expect.any(Number) });
    // Domain 0's own ring connection comes first, as in C xenstored.
    expect(before.connections.map((c) => [c.kind, c.domid])).toEqual([['guest', 0], ['socket', undefined], ['socket', undefined], ['guest', 5]]);
    expect(before.connections[2]!.watches).toEqual([{ path: '/app', token: 'w' }]);
    expect(before.connections[1]!.transactions).toEqual([{ id: tx.id, read: ['/app/x'], wrote: { '/app/x': { value: 'in-tx', perms: ['n0'] } } }]);

    await tx.commit();
    expect(await a.readString('/app/x')).toBe('in-tx');
    expect(await guest.readString('name')).toBe('guest5');
    expect(await b.directory('/app')).toEqual(['x', 'y']);
  });
});

describe('startSim options', () => {
  it('are the command line\'s: quotas, compat and explicit domains apply', async () => {
    const sim = await started(startSim({ compat: '4.17', quotas: { nodes: 2 }, explicitDomains: true }));
    expect((await sim.snapshot()).quotas).toMatchObject({ nodes: 2 });
    const xs = await sim.client();
    await expect(sim.guest(7)).rejects.toThrow(); // domain 7 does not exist yet
    await xs.control('domain', 'create', '7');
    const guest = await sim.guest(7);
    await guest.write('a', '1'); // the home node counts too: 2 nodes
    await expect(guest.write('b', '1')).rejects.toThrow(/ENOSPC|EDQUOT/);
  });
});

describe('a change between the two snapshots', () => {
  it('fails with a difference naming the node', async () => {
    const sim = await started(startSim());
    const { a } = await busyState(sim);
    const other = await sim.client();
    const before = await sim.snapshot();
    await other.write('/app/y', 'changed');
    await sim.liveUpdate();
    const after = await sim.snapshot();
    expect(diffSnapshots(before, after)).toEqual(['node /app/y: value "2" -> "changed"']);
    expect(after).not.toEqual(before);
    await a.close();
  });

  it('makes assertLiveUpdatePreserves fail, naming the node', async () => {
    // A "live update" that also lets a second client change a node.
    const sloppy = async (): Promise<SimHandle> => {
      const sim = await startSim();
      return {
        ...sim,
        liveUpdate: async () => {
          const other = await sim.client();
          await other.write('/app/x', 'sneaked');
          await other.close();
          await sim.liveUpdate();
        },
      };
    };
    const write = new RequestCommand([{ conn: 0, tx: null, type: T.WRITE, payload: '/app/x|1' }]);
    await expect(assertLiveUpdatePreserves(sloppy, [write])).rejects.toThrow(/the live update changed the state:\n {2}node \/app\/x: value "1" -> "sneaked"/);
  });
});

describe('diffSnapshots', () => {
  const base: Snapshot = {
    nodes: { '/': { value: '', perms: ['n0'] }, '/a': { value: 'v', perms: ['n0', 'r1'] } },
    connections: [{ kind: 'socket', watches: [], transactions: [{ id: 1, read: [], wrote: { '/a': null } }] }],
    domains: { 1: { quotas: { nodes: 10 } } },
  };

  it('is empty for equal snapshots and names each difference otherwise', () => {
    expect(diffSnapshots(base, structuredClone(base))).toEqual([]);
    const changed = structuredClone(base);
    delete changed.nodes['/a'];
    changed.nodes['/b'] = { value: '', perms: ['b0'] };
    changed.connections[0]!.watches.push({ path: '/', token: 't' });
    changed.connections[0]!.transactions[0]!.wrote = { '/a': { value: 'w', perms: ['n0'] } };
    changed.domains[1]!.quotas!.nodes = 11;
    expect(diffSnapshots(base, changed)).toEqual([
      'node /a: present -> absent',
      'node /b: absent -> present',
      'connection 0 watches: [] -> [{"path":"/","token":"t"}]',
      'connection 0 transaction 1: wrote /a: deleted -> present',
      'domain 1: {"quotas":{"nodes":10}} -> {"quotas":{"nodes":11}}',
    ]);
  });

  it('stops after `limit` lines', () => {
    const many = structuredClone(base);
    for (let i = 0; i < 30; i++) many.nodes[`/n${i}`] = { value: '', perms: ['n0'] };
    const lines = diffSnapshots(base, many, 5);
    expect(lines).toHaveLength(6);
    expect(lines[5]).toBe('... and 25 more');
  });
});

describe('snapshot of a stream', () => {
  const fixtures = path.join(REPO_ROOT, 'test', 'fixtures', 'c-xenstored');

  it.each(['basic', 'perms', 'watches', 'pending', 'domains'])('reads C xenstored\'s %s stream, and the simulator restores the same tree from it', async (name) => {
    const file = path.join(fixtures, `${name}.bin`);
    const fromC = snapshot(fs.readFileSync(file));
    expect(fromC.nodes['/tool/xenstored']).toEqual({ value: '', perms: ['n0'] });
    const sim = await started(startSim({ args: ['--compat', '4.17', '--restore', file] }));
    expect((await sim.snapshot()).nodes).toEqual(fromC.nodes);
  });

  it('refuses a stream that is not one', () => {
    expect(() => snapshot(Buffer.from('not a stream'))).toThrow(/xenstore|header|short/i);
  });
});

describe('the live-update property', () => {
  it('holds in process for random sequences over dom0 and guest connections', { timeout: 120_000 }, async () => {
    await fc.assert(liveUpdateProperty(() => startSim()), { numRuns: 25 });
  });

  it('holds for a spawned daemon (real re-exec)', { timeout: 120_000 }, async () => {
    await fc.assert(liveUpdateProperty(() => spawnSim(), { maxCommands: 6 }), { numRuns: 2 });
  });
});
