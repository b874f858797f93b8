/**
 * The path index of watches against the plain rule it replaces: for any
 * set of clients and watches (added, removed, reset, clients gone) and any
 * event, the index finds exactly the watches that match, in C's order —
 * clients by age, then each client's watches in registration order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Requester } from '../../src/store/requester.js';
import { COMPAT } from '../../src/store/compat.js';
import { Store } from '../../src/store/store.js';
import { watchMatches, type MatchMode, type Watch } from '../../src/store/watches.js';

const PATHS = ['/', '/a', '/a/b', '/a/b/c', '/a/bc', '/ab', '/x/y', '@', '@introduceDomain', '@releaseDomain'];

const step = fc.oneof(
  fc.record({ kind: fc.constant('client' as const) }),
  fc.record({ kind: fc.constant('gone' as const), client: fc.nat() }),
  fc.record({ kind: fc.constant('reset' as const), client: fc.nat() }),
  fc.record({
    kind: fc.constant('watch' as const), client: fc.nat(), path: fc.constantFrom(...PATHS),
    depth: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant('unwatch' as const), client: fc.nat(), which: fc.nat() }),
);

/** The rule before the index: every client in order, every one of its watches. */
function plainMatches(store: Store, path: string, mode: MatchMode): string[] {
  const out: string[] = [];
  for (const client of store.clients.values()) for (const w of client.watches) if (watchMatches(w, path, mode)) out.push(label(client, w));
  return out;
}

const label = (client: Requester, watch: Watch) => `${client.serial}:${watch.token}`;

describe('watch index', () => {
  it('finds the same watches as checking every one, in the same order', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.constantFrom(...PATHS, '/a/b/c/d', '/x'), fc.constantFrom<MatchMode>('subtree', 'exact'), (steps, path, mode) => {
        const store = new Store({ compat: COMPAT.master });
        const clients = () => [...store.clients.values()];
        let token = 0;
        for (const s of steps) {
          const list = clients();
          const client = 'client' in s && list.length > 0 ? list[s.client % list.length]! : undefined;
          if (s.kind === 'client') store.addSocketClient();
          else if (!client) continue;
          else if (s.kind === 'gone') store.removeClient(client);
          else if (s.kind === 'reset') store.dropWatchesAndTransactions(client);
          else if (s.kind === 'watch') store.watch(client, { path: s.path, token: `t${token++}`, relativeTo: undefined, depth: s.depth });
          else if (client.watches.length > 0) store.unwatch(client, s.which % client.watches.length);
          store.watchIndex.firing(path, mode); // caches groups the next steps must invalidate
        }
        const firing = () => store.watchIndex.firing(path, mode).flatMap(({ client, watches }) => watches.map((w) => label(client, w)));
        expect(firing()).toEqual(plainMatches(store, path, mode));
        expect(firing()).toEqual(plainMatches(store, path, mode)); // the second time from the cached groups
      }),
      { numRuns: 500 },
    );
  });

  it('forgets the groups it cached for a path once a watch there comes or goes', () => {
    const store = new Store({ compat: COMPAT.master });
    const [a, b] = [store.addSocketClient(), store.addSocketClient()];
    const tokens = (mode: MatchMode) => store.watchIndex.firing('/a/b', mode).map((g) => g.watches.map((w) => w.token));
    store.watch(a, { path: '/a', token: 'a1', relativeTo: undefined, depth: undefined });
    store.watch(b, { path: '/a', token: 'b1', relativeTo: undefined, depth: undefined });
    expect(tokens('subtree')).toEqual([['a1'], ['b1']]);
    store.watch(a, { path: '/a', token: 'a2', relativeTo: undefined, depth: undefined });
    expect(tokens('subtree')).toEqual([['a1', 'a2'], ['b1']]);
    store.unwatch(b, 0);
    expect(tokens('subtree')).toEqual([['a1', 'a2']]);
    store.watch(b, { path: '/a', token: 'b2', relativeTo: undefined, depth: 0 });
    expect(tokens('subtree')).toEqual([['a1', 'a2']]); // depth 0: /a/b is too deep
  });
});
