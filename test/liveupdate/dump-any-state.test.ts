/**
 * Property: no state a client can create makes a dump fail, and what a dump
 * holds restores to the same state — in version 2 exactly, in version 1
 * without the watches that have a depth (version 1 cannot carry a depth;
 * C master's version-1 streams lose them too). Random requests from two dom0
 * sockets and two guests, with hostile arguments (huge and negative depths
 * and domids), build the state; refused requests are part of the game.
 */
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { dumpDaemon } from '../../src/liveupdate/state-dump.js';
import { NO_SOCKETS, restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { dispatch } from '../../src/protocol/dispatch.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import type { Requester } from '../../src/store/requester.js';
import { childPath } from '../../src/store/path.js';
import { formatPerms } from '../../src/store/permissions.js';

const GUESTS = [5, 6];
const PATHS = ['a', 'a/b', 'a/b/c', '/x', '/x/y', '/local/domain/5/p', '/local/domain/6/q', '@introduceDomain', '@releaseDomain', '/'];
const DOMIDS = ['0', '5', '6', '7', '32767', '65535', '70000', '4294967295', '-1', '0x10', '012', 'abc', ''];
const DEPTHS = ['0', '1', '3', '65534', '65535', '99999999999', '2147483648', '-1', 'x', ''];

type Op =
  | { op: 'write'; path: string; value: string }
  | { op: 'mkdir' | 'rm'; path: string }
  | { op: 'setPerms'; path: string; perms: [string, string][] }
  | { op: 'watch'; path: string; token: string; depth: string | undefined }
  | { op: 'unwatch'; path: string; token: string }
  | { op: 'txStart' }
  | { op: 'txWrite'; path: string; value: string }
  | { op: 'txEnd'; commit: boolean };

const path = fc.constantFrom(...PATHS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), path, value: fc.string({ maxLength: 6 }) }),
  fc.record({ op: fc.constantFrom('mkdir' as const, 'rm' as const), path }),
  fc.record({ op: fc.constant('setPerms' as const), path, perms: fc.array(fc.tuple(fc.constantFrom('n', 'r', 'w', 'b'), fc.constantFrom(...DOMIDS)), { minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant('watch' as const), path, token: fc.constantFrom('t1', 't2'), depth: fc.option(fc.constantFrom(...DEPTHS), { nil: undefined }) }),
  fc.record({ op: fc.constant('unwatch' as const), path, token: fc.constantFrom('t1', 't2') }),
  fc.record({ op: fc.constant('txStart' as const) }),
  fc.record({ op: fc.constant('txWrite' as const), path, value: fc.string({ maxLength: 6 }) }),
  fc.record({ op: fc.constant('txEnd' as const), commit: fc.boolean() }),
);

class World {
  readonly daemon: Daemon;
  readonly clients: Requester[];
  private readonly lastTx = new Map<Requester, number>();

  constructor(compat: string) {
    this.daemon = new Daemon(parseOptions(['--compat', compat], { XENSTORED_RUNDIR: '/nonexistent-rundir-never-used' }), () => {});
    const dom0 = this.daemon.store.addSocketClient();
    const other = this.daemon.store.addSocketClient();
    for (const client of [dom0, other]) this.daemon.connectionFor(client);
    for (const domid of GUESTS) {
      this.request(dom0, T.WRITE, `/local/domain/${domid}\0`);
      this.request(dom0, T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
      this.request(dom0, T.INTRODUCE, `${domid}\0${domid}\0${domid}\0`);
    }
    const guests = [...this.daemon.store.clients.values()].filter((c) => c.domain && c.domid !== 0);
    expect(guests.map((c) => c.domid)).toEqual(GUESTS);
    this.clients = [dom0, other, ...guests];
  }

  request(client: Requester, type: number, payload: string, txId = 0): string {
    const frame = { type, reqId: 1, txId, payload: Buffer.from(payload, 'latin1') };
    const answer = dispatch(this.daemon.store, client, this.daemon, frame, () => {});
    answer.after?.();
    return answer.frame.payload.toString('latin1');
  }

  run(who: number, op: Op): void {
    const client = this.clients[who]!;
    const tx = this.lastTx.get(client) ?? 0;
    switch (op.op) {
      case 'write': this.request(client, T.WRITE, `${op.path}\0${op.value}`); break;
      case 'mkdir': this.request(client, T.MKDIR, `${op.path}\0`); break;
      case 'rm': this.request(client, T.RM, `${op.path}\0`); break;
      case 'setPerms': this.request(client, T.SET_PERMS, `${op.path}\0${op.perms.map(([c, d]) => `${c}${d}\0`).join('')}`); break;
      case 'watch': this.request(client, T.WATCH, `${op.path}\0${op.token}\0${op.depth === undefined ? '' : `${op.depth}\0`}`); break;
      case 'unwatch': this.request(client, T.UNWATCH, `${op.path}\0${op.token}\0`); break;
      case 'txStart': {
        const id = Number(this.request(client, T.TRANSACTION_START, '\0').replace('\0', ''));
        if (id > 0) this.lastTx.set(client, id);
        break;
      }
      case 'txWrite': this.request(client, T.WRITE, `${op.path}\0${op.value}`, tx); break;
      case 'txEnd': this.request(client, T.TRANSACTION_END, op.commit ? 'T\0' : 'F\0', tx); break;
    }
  }
}

/** Everything a dump must carry that clients can observe. */
function snapshot(daemon: Daemon, withDepthWatches: boolean) {
  const { store } = daemon;
  const tree: string[] = [];
  const walk = (p: string) => {
    const node = store.lookup(p)!;
    tree.push(`${p}=${node.value} ${formatPerms(node.perms).join(',')} ${node.perms.map((e) => (e.stale ? 's' : '-')).join('')}`);
    for (const name of node.children?.names() ?? []) walk(childPath(p, name));
  };
  walk('/');
  const special = [...store.specialNodes].map(([name, n]) => `${name} ${formatPerms(n.perms).join(',')}`)
    .concat([...store.specialPerms].map(([name, perms]) => `${name} ${formatPerms(perms).join(',')}`));
  const clients = [...store.clients.values()].map((c) => ({
    domid: c.domid,
    privileged: c.privileged,
    watches: c.watches.filter((w) => withDepthWatches || w.depth === undefined).map((w) => [w.path, w.token, w.depth ?? null]),
    transactions: [...c.transactions.keys()],
  }));
  // The table's order is not observable; each domain's state is.
  const domains = [...store.domains.all()].map((d) => [d.domid, d.introduced, d.nodeCount]).sort((x, y) => Number(x[0]) - Number(y[0]));
  return { tree, special, clients, domains };
}

describe.each(['master', '4.17'])('%s: any state clients can create', (compat) => {
  it('dumps, and restores to the same state (version 2 exactly, version 1 without depth watches)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1 + GUESTS.length }), opArb), { maxLength: 40 }), (steps) => {
        const world = new World(compat);
        for (const [who, op] of steps) world.run(who, op);
        for (const version of [2, 1] as const) {
          const stream = dumpDaemon(world.daemon, { version });
          // Socket clients come back only with a socket: give each an unconnected one, closed at once.
          const sockets = { ...NO_SOCKETS, socket: () => new net.Socket() };
          const restored = restoreDaemon(world.daemon.options, stream, sockets, () => {}).daemon;
          const after = snapshot(restored, version === 2);
          void restored.close();
          expect(after).toEqual(snapshot(world.daemon, version === 2));
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('watch depth (master)', () => {
  it('refuses at WATCH time a depth no stream can hold, with the EINVAL C gives a negative one', () => {
    const world = new World('master');
    const guest = world.clients[2]!;
    expect(world.request(guest, T.WATCH, '/local/domain/5\0a\x0065534\0')).toBe('OK\0');
    for (const depth of ['65535', '99999999999', '-1']) expect(world.request(guest, T.WATCH, `/local/domain/5\0b\0${depth}\0`)).toBe('EINVAL\0');
    expect(guest.watches.map((w) => w.depth)).toEqual([65534]);
  });

  it('leaves a watch with a depth out of a version-1 stream, as a 4.17 reader of a C master stream ends up', () => {
    const world = new World('master');
    const guest = world.clients[2]!;
    expect(world.request(guest, T.WATCH, 'd\0deep\x003\0')).toBe('OK\0');
    expect(world.request(guest, T.WATCH, 'd\0plain\0')).toBe('OK\0');
    const restored = restoreDaemon(world.daemon.options, dumpDaemon(world.daemon, { version: 1 }), NO_SOCKETS, () => {}).daemon;
    const again = [...restored.store.clients.values()].find((c) => c.domid === 5)!;
    expect(again.watches.map((w) => [w.token, w.depth])).toEqual([['plain', undefined]]);
  });
});
