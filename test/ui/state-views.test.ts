/**
 * The page's views of the store, checked against a plain model (a map of
 * path to value, children in creation order) over random trees.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPAT } from '../../src/store/compat.js';
import { opContext } from '../../src/store/context.js';
import { removeNode, writeNode } from '../../src/store/operations.js';
import { Store } from '../../src/store/store.js';
import { directoryPage, nodeAt, searchPaths } from '../../src/ui/state-views.js';

type Op = { rm: boolean; path: string; value: string };

const name = fc.constantFrom('a', 'b', 'c', 'dd', 'e1');
const pathArb = fc.array(name, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
const ops = fc.array(fc.record({ rm: fc.boolean(), path: pathArb, value: fc.string({ maxLength: 6 }) }), { maxLength: 40 });

/** The model: every node's path, in the order a depth-first walk in creation order meets them. */
function model(history: Op[]): Map<string, string> {
  const nodes = new Map<string, string>([['/', ''], ['/tool', ''], ['/tool/xenstored', '']]);
  for (const op of history) {
    if (op.rm) {
      for (const p of [...nodes.keys()]) if (p === op.path || p.startsWith(`${op.path}/`)) nodes.delete(p);
      continue;
    }
    const parts = op.path.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) {
      const ancestor = `/${parts.slice(0, i).join('/')}`;
      if (!nodes.has(ancestor)) nodes.set(ancestor, '');
    }
    nodes.set(op.path, op.value);
  }
  return nodes;
}

function childrenIn(nodes: Map<string, string>, dir: string): string[] {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  return [...nodes.keys()].filter((p) => p !== dir && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'));
}

function build(history: Op[]): Store {
  const store = new Store({ compat: COMPAT.master });
  const ctx = opContext(store, store.addSocketClient(), undefined);
  for (const op of history) {
    try {
      if (op.rm) removeNode(ctx, op.path);
      else writeNode(ctx, op.path, op.value);
    } catch {
      // removing what is not there: ENOENT, as in the model (nothing changes)
    }
  }
  return store;
}

describe('state views', () => {
  it('pages every directory in creation order, page by page', () => {
    fc.assert(fc.property(ops, fc.integer({ min: 1, max: 3 }), (history, limit) => {
      const store = build(history);
      const nodes = model(history);
      for (const dir of nodes.keys()) {
        const seen: string[] = [];
        for (let offset = 0; ; offset += limit) {
          const page = directoryPage(store, dir, offset, limit)!;
          expect(page.total).toBe(childrenIn(nodes, dir).length);
          seen.push(...page.children.map((c) => c.path));
          if (page.children.length < limit) break;
        }
        expect(seen).toEqual(childrenIn(nodes, dir));
      }
      expect(directoryPage(store, '/not/there', 0, limit)).toBeUndefined();
    }));
  });

  it('finds every path containing the query, in tree order', async () => {
    await fc.assert(fc.asyncProperty(ops, fc.constantFrom('a', '/b', 'dd/', 'e1', 'zz'), async (history, query) => {
      const store = build(history);
      const nodes = model(history);
      const expected = [...nodes.keys()].filter((p) => p.includes(query)).sort((x, y) => treeOrder(nodes, x, y));
      expect(await searchPaths(store, query, 1000)).toEqual({ paths: expected, complete: true });
      const few = await searchPaths(store, query, 1);
      expect(few.paths).toEqual(expected.slice(0, 1));
      expect(few.complete).toBe(expected.length <= 1);
    }));
  });

  it('walks a big tree in slices, and still finds everything', async () => {
    const store = new Store({ compat: COMPAT.master });
    const ctx = opContext(store, store.addSocketClient(), undefined);
    for (let i = 0; i < 12_000; i++) writeNode(ctx, `/big/n${i}`, '');
    let served = false;
    setImmediate(() => (served = true));
    const found = await searchPaths(store, 'n1199', 100);
    expect(served, 'the event loop ran during the walk').toBe(true);
    expect(found).toEqual({ paths: ['/big/n1199', ...Array.from({ length: 10 }, (_, i) => `/big/n1199${i}`)], complete: true });
  });

  it('shows a value as text, and as hex when it is binary', () => {
    const store = new Store({ compat: COMPAT.master });
    const ctx = opContext(store, store.addSocketClient(), undefined);
    writeNode(ctx, '/text', Buffer.from('héllo').toString('latin1')); // the UTF-8 bytes, one per character
    writeNode(ctx, '/bin', '\x00\x01\xff');
    expect(nodeAt(store, '/text')).toMatchObject({ text: 'héllo', hex: undefined, size: 6, perms: ['n0'] });
    expect(nodeAt(store, '/bin')).toMatchObject({ hex: '0001ff', size: 3 });
  });
});

/** Depth-first, children in creation order (the model's insertion order). */
function treeOrder(nodes: Map<string, string>, x: string, y: string): number {
  const key = (p: string): number[] => {
    const out: number[] = [];
    let dir = '/';
    for (const part of p.split('/').slice(1).filter(Boolean)) {
      const child = dir === '/' ? `/${part}` : `${dir}/${part}`;
      out.push(childrenIn(nodes, dir).indexOf(child));
      dir = child;
    }
    return out;
  };
  const a = key(x);
  const b = key(y);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
