/**
 * checkStore finds what the store got wrong, and what it found once stays fixed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkStore, StoreCheckError } from '../../src/store/check-store.js';
import { Harness, MessageType as T } from '../protocol/harness.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

function harness(): Harness {
  const h = new Harness({});
  harnesses.push(h);
  return h;
}

describe('checkStore', () => {
  it('names a node count that does not match the nodes a domain owns, and a child list entry with no node', () => {
    const h = harness();
    h.req(h.adminConn(), T.WRITE, '/a|');
    checkStore(h.store);
    h.store.domains.get(0)!.nodeCount += 2;
    h.store.lookup('/a')!.children = null;
    h.store.root.children!.add('ghost', undefined);
    expect(() => checkStore(h.store)).toThrow(StoreCheckError);
    expect(() => checkStore(h.store)).toThrow(/\/ lists a child "ghost" with no node.*domain 0 counts \d+ nodes but owns \d+/);
  });

  it('a transaction removing a node owned by a domain xenstored has no object for leaves no negative count (found by checkStore in the model test)', () => {
    const h = harness();
    const a = h.adminConn();
    h.req(a, T.WRITE, '/a/b|');
    h.req(a, T.SET_PERMS, '/a/b|n32757|');
    const tx = h.txStart(a);
    expect(h.req(a, T.RM, '/a/b|', tx)).toBe('OK');
    expect(h.req(a, T.TRANSACTION_END, 'T|', tx)).toBe('OK');
    checkStore(h.store);
  });

  it('names node memory that does not match what the nodes a domain owns take', () => {
    const h = harness();
    h.req(h.adminConn(), T.WRITE, '/a|value');
    checkStore(h.store);
    h.store.domains.get(0)!.memory += 7;
    expect(() => checkStore(h.store)).toThrow(/domain 0 is charged (\d+) bytes for its nodes, which take \d+/);
  });
});
