/**
 * The whole store as plain values: what a dump writes, what the testing
 * kit's snapshot() and the sandbox's views show. Each value comes from the
 * save function beside its own concept.
 */
import { saveRequester, type SavedRequester } from './requester.js';
import { saveDomain, type SavedDomain } from './domains.js';
import type { SavedHypervisor } from './hypervisor.js';
import { saveNode, type SavedNode } from './node.js';
import type { PermEntry } from './permissions.js';
import type { Quotas } from './quotas.js';
import type { Store } from './store.js';
import { walkTree } from './tree-walk.js';

export interface SavedStore {
  /** The global generation counter: the last value handed out. */
  generation: number;
  quotas: Quotas;
  softMemory: number;
  hypervisor: SavedHypervisor;
  domains: SavedDomain[];
  /** 4.17 keeps the special paths' permissions beside the tree (master: special nodes, in `nodes`). */
  specialPerms: [string, readonly PermEntry[]][];
  /** The tree from `/` down, a parent before its children, then master's special nodes. */
  nodes: SavedNode[];
  /** In creation order, which is the order watch events go out in. */
  clients: SavedRequester[];
}

/**
 * Hands out the committed nodes as a reader sees them (stale permission
 * entries marked), in tree order, then the special nodes: one at a time,
 * so a dump of a large store never holds them all.
 */
export function forEachSavedNode(store: Store, visit: (node: SavedNode) => void): void {
  walkTree('/', store.root, (path, node) => visit(saveNode(path, store.withCurrentPerms(node))));
  for (const [name, node] of store.specialNodes) visit(saveNode(name, store.withCurrentPerms(node)));
}

export function saveStore(store: Store): SavedStore {
  return {
    generation: store.generation,
    quotas: { ...store.quotas },
    softMemory: store.softMemory,
    hypervisor: store.hypervisor.describe(),
    domains: [...store.domains.all()].map(saveDomain),
    specialPerms: [...store.specialPerms],
    nodes: savedNodeList(store),
    clients: [...store.clients.values()].map(saveRequester),
  };
}

function savedNodeList(store: Store): SavedNode[] {
  const nodes: SavedNode[] = [];
  forEachSavedNode(store, (node) => nodes.push(node));
  return nodes;
}
