/**
 * Builds a store from saved values (a whole-state restore). The builder
 * owns every invariant the store keeps: nodes may come in any order (a
 * node whose parent has not come yet waits for finish()), a node must not
 * come twice or be left without a parent, node counts are recounted from the
 * owners, the generation counter ends past every generation handed out,
 * and checkStore() passes before the store is used. Callers map their
 * format to saved values and never touch the store's insides.
 */
import { ChildList } from './child-list.js';
import { loadRequester, type Requester, type SavedRequester } from './requester.js';
import { loadDomain, type DomainUpdate } from './domains.js';
import type { SavedHypervisor } from './hypervisor.js';
import { Node } from './node.js';
import { baseName, depth, isSpecialPath, parentPath } from './path.js';
import type { PermEntry } from './permissions.js';
import { isQuotaName, type QuotaName } from './quotas.js';
import type { Store } from './store.js';
import { checkStore } from './check-store.js';

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
  /** Every node added, in order: committed ones and (master) special ones. */
  private readonly added: Node[] = [];
  /** The branch just added, root first: a stream lists parents just before their children. */
  private readonly branch: { path: string; node: Node }[] = [];
  /** Nodes whose parent had not come yet, linked at finish(). */
  private readonly waiting: { path: string; node: Node; index: number }[] = [];
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
    const perms = store.perms.intern(saved.perms);
    if (perms.length === 0) throw new StoreImportError(`${saved.path} has no owner`);
    const gen = saved.gen ?? store.nextGeneration();
    let node: Node;
    if (isSpecialPath(saved.path)) {
      if (!store.compat.specialPathsAreNodes) {
        store.specialPerms.set(saved.path, perms);
        return;
      }
      if (store.specialNodes.has(saved.path)) throw new StoreImportError(`${saved.path} comes twice`);
      node = new Node(saved.value, perms, gen);
      store.specialNodes.set(saved.path, node);
    } else if (saved.path === '/') {
      if (this.rootAdded) throw new StoreImportError('/ comes twice');
      this.rootAdded = true;
      node = store.root;
      node.value = saved.value;
      node.perms = perms;
      node.gen = gen;
      this.branch.length = 0;
      this.branch.push({ path: '/', node });
    } else {
      node = new Node(saved.value, perms, gen);
      const parent = this.parentOnBranch(saved.path) ?? store.lookup(parentPath(saved.path));
      if (parent) {
        link(parent, saved.path, node);
        this.branch.push({ path: saved.path, node });
      } else {
        this.waiting.push({ path: saved.path, node, index: this.added.length });
      }
    }
    // As when a node is written: the owner's domain object exists from now on if the hypervisor has the domain.
    store.existingDomainObject(perms[0]!.domid);
    this.added.push(node);
  }

  /** The parent of `path` if it is on the branch just added (the usual case: no lookup from the root). */
  private parentOnBranch(path: string): Node | undefined {
    const parent = parentPath(path);
    const { branch } = this;
    while (branch.length > 0 && branch[branch.length - 1]!.path !== parent) branch.pop();
    return branch[branch.length - 1]?.node;
  }

  /** Nodes added so far: committed ones and (master) special ones, whose generations a stream may carry. */
  get nodeCount(): number {
    return this.added.length;
  }

  /** Generations of the nodes, in the order they were added (a stream may carry them last). */
  setGenerations(gens: ArrayLike<number>): void {
    if (gens.length !== this.added.length) throw new StoreImportError(`${gens.length} generations for ${this.added.length} nodes`);
    this.added.forEach((node, i) => (node.gen = gens[i]!));
  }

  setSpecialPerms(path: string, perms: readonly PermEntry[]): void {
    this.store.specialPerms.set(path, this.store.perms.intern(perms));
  }

  /** Gives permission entries back the domids over 16 bits a stream could not hold: [index, domid] pairs. */
  widenDomids(path: string, entries: readonly [number, number][]): void {
    const { store } = this;
    const node = isSpecialPath(path) ? store.specialNodes.get(path) : store.lookup(path);
    const perms = node?.perms ?? store.specialPerms.get(path);
    if (!perms) throw new StoreImportError(`wide domids for ${path}, which is not there`);
    const widened = perms.map((e, i) => {
      const wide = entries.find(([index]) => index === i);
      return wide ? { ...e, domid: wide[1] } : e;
    });
    if (node) node.perms = store.perms.intern(widened);
    else store.specialPerms.set(path, store.perms.intern(widened));
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
  addClient(saved: SavedRequester): Requester {
    const { store } = this;
    const client = saved.ring ? store.addDomainClient(store.domainObject(saved.domid)) : store.addSocketClient();
    loadRequester(client, saved, store);
    return client;
  }

  /**
   * Links the nodes that came before their parents, recounts (nodes and
   * memory per domain), and checks
   * the result. `generation`: the counter's saved value, if known; it never
   * ends below a generation already handed out.
   */
  finish(generation?: number): void {
    if (this.finished) throw new StoreImportError('the import is already finished');
    this.finished = true;
    const { store } = this;
    if (!this.rootAdded) throw new StoreImportError('there is no root node');
    if (generation !== undefined && !(Number.isSafeInteger(generation) && generation >= 0)) throw new StoreImportError(`generation ${String(generation)} is not a count`);
    this.linkWaiting();
    let highest = store.generation;
    for (const node of this.added) if (node.gen > highest) highest = node.gen;
    store.generation = Math.max(highest, generation ?? 0);
    store.domains.reorder(this.domainOrder);
    for (const domain of store.domains.all()) domain.nodeCount = 0;
    for (const node of this.added) {
      const owner = store.domains.get(node.perms[0]!.domid);
      if (owner) owner.nodeCount++;
    }
    // Memory is not saved: it follows from the nodes, as C recounts it.
    store.recountNodeMemory();
    checkStore(store);
  }

  /**
   * Parents before children (by depth), then every list that got a late
   * child is put back in the order the nodes were added.
   */
  private linkWaiting(): void {
    if (this.waiting.length === 0) return;
    const { store } = this;
    const late = new Set<Node>();
    const sorted = [...this.waiting].sort((a, b) => depth(a.path) - depth(b.path) || a.index - b.index);
    for (const { path, node } of sorted) {
      const parent = store.lookup(parentPath(path));
      if (!parent) throw new StoreImportError(`the parent of ${path} is not there`);
      link(parent, path, node);
      late.add(parent);
    }
    const order = new Map(this.added.map((node, i) => [node, i]));
    for (const parent of late) {
      const children = [...parent.children!.children()].sort(([, a], [, b]) => order.get(a!)! - order.get(b!)!);
      parent.children = new ChildList(new Map(children));
    }
  }
}

function link(parent: Node, path: string, node: Node): void {
  const name = baseName(path);
  if (parent.children?.has(name)) throw new StoreImportError(`${path} comes twice`);
  parent.children = (parent.children ?? new ChildList()).writable();
  parent.children.add(name, node);
}
