/**
 * Builds a store from saved values (a restore, or a domain arriving by
 * migration). The builder owns every invariant the store keeps: nodes may
 * come in any order and are linked only at finish(), a node must not come
 * twice or be left without a parent, node counts are recounted from the
 * owners, the generation counter ends past every generation handed out,
 * and checkStore() passes before the store is used. Callers map their
 * format to saved values and never touch the store's insides.
 */
import { ChildList } from './child-list.js';
import { loadClient, type Client, type SavedClient } from './client.js';
import { loadDomain, type DomainUpdate } from './domains.js';
import type { SavedHypervisor } from './hypervisor.js';
import { Node } from './node.js';
import { baseName, isSpecialPath, parentPath } from './path.js';
import { makePerms, type PermEntry } from './permissions.js';
import { isQuotaName, type QuotaName } from './quotas.js';
import type { Store } from './store.js';
import { checkStore } from './check-store.js';
import { walkTree } from './tree-walk.js';

export class StoreImportError extends Error {}

/** A committed node to import; without `gen` it gets the next generation. */
export interface ImportedNode {
  path: string;
  value: string;
  perms: readonly PermEntry[];
  gen?: number;
}

/**
 * Imports into a store created with `initialTree: false`: everything the
 * store will hold comes through here.
 */
export class StoreImport {
  private readonly added: { path: string; node: Node }[] = [];
  private readonly byPath = new Map<string, Node>();
  private readonly domainOrder: number[] = [];
  private rootAdded = false;
  private finished = false;

  constructor(private readonly store: Store) {}

  /** Global quota values by name; names this store does not know are ignored, as C does. */
  setQuota(name: string, value: number): void {
    if (name === 'soft-memory') this.store.softMemory = value;
    else if (isQuotaName(name)) this.store.quotas[name as QuotaName] = value;
  }

  addNode(saved: ImportedNode): void {
    const { store } = this;
    const perms = makePerms(saved.perms);
    if (perms.length === 0) throw new StoreImportError(`${saved.path} has no owner`);
    const gen = saved.gen ?? store.nextGeneration();
    if (isSpecialPath(saved.path)) {
      if (!store.compat.specialPathsAreNodes) {
        store.specialPerms.set(saved.path, perms);
        return;
      }
      if (store.specialNodes.has(saved.path)) throw new StoreImportError(`${saved.path} comes twice`);
      const node = new Node(saved.value, perms, gen);
      store.specialNodes.set(saved.path, node);
      this.added.push({ path: saved.path, node });
      return;
    }
    if (this.byPath.has(saved.path) || (saved.path === '/' && this.rootAdded)) {
      throw new StoreImportError(`${saved.path} comes twice`);
    }
    let node: Node;
    if (saved.path === '/') {
      node = store.root;
      node.value = saved.value;
      node.perms = perms;
      node.gen = gen;
      this.rootAdded = true;
    } else {
      node = new Node(saved.value, perms, gen);
      this.byPath.set(saved.path, node);
    }
    // As when a node is written: the owner's domain object exists from now on if the hypervisor has the domain.
    store.existingDomainObject(perms[0]!.domid);
    this.added.push({ path: saved.path, node });
  }

  /** Nodes added so far: committed ones and (master) special ones, whose generations a stream may carry. */
  get nodeCount(): number {
    return this.added.length;
  }

  /** Generations of the committed nodes, in the order they were added (a stream may carry them last). */
  setGenerations(gens: ArrayLike<number>): void {
    if (gens.length !== this.added.length) throw new StoreImportError(`${gens.length} generations for ${this.added.length} nodes`);
    this.added.forEach(({ node }, i) => (node.gen = gens[i]!));
  }

  setSpecialPerms(path: string, perms: readonly PermEntry[]): void {
    this.store.specialPerms.set(path, makePerms(perms));
  }

  setHypervisor(saved: SavedHypervisor): void {
    this.store.hypervisor.load(saved);
  }

  /**
   * A domain object and what xenstored knows of it (its node count is
   * recounted). Domains end up in the order given here, as the saved store
   * had them: the order decides which domain's events come first.
   */
  setDomain(saved: DomainUpdate): void {
    const domain = this.store.domainObject(saved.domid);
    loadDomain(domain, saved);
    if (saved.uniqueId === undefined && saved.introduced) domain.uniqueId = this.store.hypervisor.info(saved.domid)?.uniqueId ?? 0n;
    this.domainOrder.push(saved.domid);
  }

  /** Registers a client with its watches and open transactions; clients come in creation order. */
  addClient(saved: SavedClient): Client {
    const { store } = this;
    const client = saved.ring ? store.addDomainClient(store.domainObject(saved.domid)) : store.addSocketClient();
    loadClient(client, saved);
    return client;
  }

  /**
   * Links every node to its parent, recounts, and checks the result.
   * `generation`: the counter's saved value, if known; it never ends below
   * a generation already handed out.
   */
  finish(generation?: number): void {
    if (this.finished) throw new StoreImportError('the import is already finished');
    this.finished = true;
    const { store } = this;
    if (!this.rootAdded) throw new StoreImportError('there is no root node');
    for (const { path, node } of this.added) {
      if (path === '/' || isSpecialPath(path)) continue;
      const parentName = parentPath(path);
      const parent = parentName === '/' ? store.root : this.byPath.get(parentName);
      if (!parent) throw new StoreImportError(`the parent of ${path} is not there`);
      parent.children = (parent.children ?? new ChildList()).writable();
      parent.children.add(baseName(path), node);
    }
    let highest = store.generation;
    for (const { node } of this.added) if (node.gen > highest) highest = node.gen;
    store.generation = Math.max(highest, generation ?? 0);
    store.domains.reorder(this.domainOrder);
    recountNodes(store);
    checkStore(store);
  }
}

/** Sets every domain object's node count from the owners of the nodes. */
function recountNodes(store: Store): void {
  for (const domain of store.domains.all()) domain.nodeCount = 0;
  const count = (_path: string, node: Node): void => {
    const domain = store.domains.get(node.perms[0]!.domid);
    if (domain) domain.nodeCount++;
  };
  walkTree('/', store.root, count);
  for (const [name, node] of store.specialNodes) count(name, node);
}
