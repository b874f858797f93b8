/**
 * The import builder owns the store's invariants whatever order the nodes
 * come in: a tree saved, shuffled and imported comes back the same (child
 * order included), and a node twice or an orphan is refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkStore } from '../../src/store/check-store.js';
import { COMPAT } from '../../src/store/compat.js';
import { forEachSavedNode } from '../../src/store/saved-store.js';
import { Store } from '../../src/store/store.js';
import { StoreImport, StoreImportError } from '../../src/store/store-import.js';
import type { SavedNode } from '../../src/store/node.js';

const owner = (domid: number) => [{ bits: 0, domid, stale: false }];

/** Paths of a random tree: each new node hangs below one made before it. */
const tree = fc.array(fc.record({ parent: fc.nat(), name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), owner: fc.constantFrom(0, 1, 2) }), { maxLength: 40 })
  .map((steps) => {
    const nodes: SavedNode[] = [{ path: '/', value: 'root', perms: owner(0), gen: 1 }];
    for (const s of steps) {
      const parent = nodes[s.parent % nodes.length]!.path;
      const path = parent === '/' ? `/${s.name}` : `${parent}/${s.name}`;
      if (!nodes.some((n) => n.path === path)) nodes.push({ path, value: path, perms: owner(s.owner), gen: nodes.length + 1 });
    }
    return nodes;
  });

function importAll(nodes: readonly SavedNode[]): Store {
  const store = new Store({ compat: COMPAT['4.17'], initialTree: false });
  const builder = new StoreImport(store);
  for (const n of nodes) builder.addNode(n);
  builder.finish();
  return store;
}

function saved(store: Store): SavedNode[] {
  const out: SavedNode[] = [];
  forEachSavedNode(store, (n) => out.push({ ...n, perms: [...n.perms] }));
  return out;
}

describe('StoreImport', () => {
  it('any order of the same nodes gives the same store, child order included', () => {
    const shuffledTree = tree.chain((nodes) => fc.tuple(fc.constant(nodes), fc.shuffledSubarray(nodes, { minLength: nodes.length, maxLength: nodes.length })));
    fc.assert(fc.property(shuffledTree, ([nodes, order]) => {
      const inOrder = saved(importAll(nodes));
      const shuffled = importAll(order);
      checkStore(shuffled);
      // Siblings keep the order they were added in, so compare against the same order's tree.
      const expected = saved(importAll([...order].sort((a, b) => a.path.split('/').length - b.path.split('/').length)));
      expect(saved(shuffled)).toEqual(expected);
      expect(new Set(inOrder.map((n) => n.path))).toEqual(new Set(saved(shuffled).map((n) => n.path)));
      for (const domid of [0, 1, 2]) {
        expect(shuffled.domains.get(domid)?.nodeCount ?? 0).toBe(nodes.filter((n) => n.perms[0]!.domid === domid && shuffled.domains.get(domid)).length);
      }
    }));
  });

  it('refuses a node twice, an orphan and a store without a root', () => {
    const root: SavedNode = { path: '/', value: '', perms: owner(0), gen: 1 };
    const a: SavedNode = { path: '/a', value: '', perms: owner(0), gen: 2 };
    expect(() => importAll([root, a, a])).toThrow(new StoreImportError('/a comes twice'));
    expect(() => importAll([root, { ...a, path: '/x/y' }])).toThrow(new StoreImportError('the parent of /x/y is not there'));
    expect(() => importAll([a])).toThrow(new StoreImportError('there is no root node'));
  });
});
