/**
 * The daemon's whole data model: the node tree, the generation counter,
 * domains, clients with their watches and transactions, quotas. Synchronous;
 * its only view of time is the clock in its options, and watch events leave
 * through the `events` sink.
 */
import { INTRODUCE_DOMAIN, RELEASE_DOMAIN, DOMID_ANY, Feature, SUPPORTED_FEATURES } from '../wire/vocabulary.js';
import { ChildList } from './child-list.js';
import { Requester, requesterFeatures } from './requester.js';
import type { Compat } from './compat.js';
import { Domain, DomainTable } from './domains.js';
import { Hypervisor } from './hypervisor.js';
import { Node, type NodeContents, type SizedRecord } from './node.js';
import { childPath, isSpecialPath } from './path.js';
import { PERM_READ, PERM_NONE, PermsTable, type PermEntry, type Perms } from './permissions.js';
import { DEFAULT_QUOTAS, DEFAULT_SOFT_MEMORY, type Quotas } from './quotas.js';
import type { StoreTransaction } from './transaction.js';
import { WatchIndex } from './watch-index.js';
import { batchEvents, type EventBatch } from './events.js';
import { watchBytes, type Watch } from './watches.js';

/** Receives every watch event the moment it is generated. */
export type EventSink = (client: Requester, path: string, token: string) => void;

/** Receives a commit's events for one client, decided but not yet built. */
export type EventBatchSink = (client: Requester, batch: EventBatch) => void;

export interface StoreOptions {
  compat: Compat;
  quotas?: Partial<Quotas>;
  softMemory?: number;
  /** Domains exist until destroyed (true) or only once created. */
  implicitDomains?: boolean;
  /** Give orphaned nodes of dead domains to dom0 instead of deleting them. */
  keepOrphans?: boolean;
  /** False when a state stream will provide every node (restore). */
  initialTree?: boolean;
  /** Wall-clock milliseconds (Date.now unless a test fixes the time). */
  now?: () => number;
}

export class Store {
  readonly compat: Compat;
  /** Every permission list the store holds, shared by value. */
  readonly perms = new PermsTable();
  readonly root: Node;
  /** Master: @introduceDomain and @releaseDomain are hidden nodes. */
  readonly specialNodes = new Map<string, Node>();
  /** 4.17: the special paths' permissions, kept beside the tree. */
  readonly specialPerms = new Map<string, Perms>();
  readonly domains = new DomainTable();
  readonly hypervisor: Hypervisor;
  readonly clients = new Map<number, Requester>();
  /** Every client's watches by path; change them only through watch() and unwatch(). */
  readonly watchIndex = new WatchIndex();
  readonly quotas: Quotas;
  softMemory: number;
  readonly keepOrphans: boolean;
  readonly now: () => number;
  generation = 0;
  events: EventSink = () => {};
  /** Unless replaced, hands the batch's events to `events` one by one. */
  eventBatches: EventBatchSink = (client, batch) => {
    for (const [path, token] of batchEvents(batch)) this.events(client, path, token);
  };
  private nextClientSerial = 1;
  /** Open transactions with copies touched since their bytes were last measured, and their clients. */
  private readonly unsettledTransactions = new Map<StoreTransaction, Requester>();

  constructor(options: StoreOptions) {
    this.compat = options.compat;
    this.quotas = { ...DEFAULT_QUOTAS, ...options.quotas };
    this.softMemory = options.softMemory ?? DEFAULT_SOFT_MEMORY;
    this.keepOrphans = options.keepOrphans ?? false;
    this.now = options.now ?? Date.now;
    this.hypervisor = new Hypervisor(options.implicitDomains ?? true);
    this.domainObject(0);
    this.root = options.initialTree === false ? new Node('', this.perms.owned(0), 0) : this.buildInitialTree();
    if (options.initialTree !== false) {
      // Like C xenstored, dom0 is introduced from the start, with its ring connection.
      const dom0 = this.domainObject(0);
      dom0.introduced = true;
      dom0.uniqueId = this.hypervisor.info(0)!.uniqueId;
      this.addDomainClient(dom0);
      this.recountNodeMemory();
    }
  }

  private buildInitialTree(): Node {
    const perms = this.perms.owned(0);
    const xenstored = new Node('', perms, 0);
    const tool = new Node('', perms, 0, new ChildList(new Map([['xenstored', xenstored]])));
    const root = new Node('', perms, 0, new ChildList(new Map([['tool', tool]])));
    root.gen = this.nextGeneration();
    tool.gen = this.nextGeneration();
    xenstored.gen = this.nextGeneration();
    this.domains.get(0)!.nodeCount = 3;
    if (this.compat.specialPathsAreNodes) {
      this.specialNodes.set(RELEASE_DOMAIN, new Node('', this.perms.intern([
        { bits: PERM_NONE, domid: 0, stale: false },
        { bits: PERM_READ, domid: DOMID_ANY, stale: false },
      ]), this.nextGeneration()));
      this.specialNodes.set(INTRODUCE_DOMAIN, new Node('', perms, this.nextGeneration()));
      this.domains.get(0)!.nodeCount += 2;
    } else {
      this.specialPerms.set(RELEASE_DOMAIN, perms);
      this.specialPerms.set(INTRODUCE_DOMAIN, perms);
    }
    return root;
  }

  nextGeneration(): number {
    return ++this.generation;
  }

  /** The live node at an absolute (or, in master, special) path. */
  lookup(path: string): Node | undefined {
    if (isSpecialPath(path)) return this.specialNodes.get(path);
    if (path === '/') return this.root;
    // The components of `path` one by one (as split('/') would give them),
    // without building an array: every request looks paths up.
    let node: Node | undefined = this.root;
    for (let start = 1; ; ) {
      const slash = path.indexOf('/', start);
      node = node.children?.get(path.slice(start, slash < 0 ? path.length : slash));
      if (!node || slash < 0) return node;
      start = slash + 1;
    }
  }

  // --- clients ---------------------------------------------------------------

  /** A local socket client: privileged, acting as the store's own domain 0. */
  addSocketClient(): Requester {
    return this.register(0, true, undefined);
  }

  addDomainClient(domain: Domain): Requester {
    return this.register(domain.domid, domain.domid === 0, domain);
  }

  private register(domid: number, privileged: boolean, domain: Domain | undefined): Requester {
    const client = new Requester(this.nextClientSerial++, domid, privileged, `/local/domain/${domid}`, domain, this.compat.anyDomid);
    this.clients.set(client.serial, client);
    return client;
  }

  /** Files a new open transaction of `client`; its copies are charged as they are touched. */
  openTransaction(client: Requester, tx: StoreTransaction): void {
    client.transactions.set(tx.id, tx);
    for (const path of tx.touched.keys()) this.copyTouched(client, tx, path);
  }

  /** Ends `client`'s transaction `tx` (committed or not), refunding its copies. */
  closeTransaction(client: Requester, tx: StoreTransaction): void {
    client.transactions.delete(tx.id);
    if (client.transactions.size === 0) client.transactionsSince = 0;
    this.unsettledTransactions.delete(tx);
    this.chargeConnection(client, -tx.copyBytes);
  }

  /** The copy at `path` in `client`'s transaction `tx` was read or changed: re-measured when memory is next asked for. */
  copyTouched(client: Requester, tx: StoreTransaction, path: string): void {
    tx.copyTouched(path);
    this.unsettledTransactions.set(tx, client);
  }

  removeClient(client: Requester): void {
    this.dropWatchesAndTransactions(client);
    this.clients.delete(client.serial);
  }

  /** Registers `watch` for `client`, after its others. */
  watch(client: Requester, watch: Watch): void {
    client.watches.push(watch);
    this.watchIndex.add(client, watch);
    this.chargeConnection(client, watchBytes(watch));
  }

  /** Removes the client's watch at `index` in its list. */
  unwatch(client: Requester, index: number): void {
    const [watch] = client.watches.splice(index, 1);
    if (!watch) return;
    this.watchIndex.remove(watch);
    this.chargeConnection(client, -watchBytes(watch));
  }

  dropWatchesAndTransactions(client: Requester): void {
    while (client.watches.length > 0) this.unwatch(client, client.watches.length - 1);
    for (const tx of [...client.transactions.values()]) this.closeTransaction(client, tx);
  }

  // --- domains and quotas ----------------------------------------------------

  /** xenstored's object for `domid`, created now if it does not exist yet. */
  domainObject(domid: number): Domain {
    return this.domains.get(domid) ?? this.domains.add(
      new Domain(domid, this.generation, SUPPORTED_FEATURES, { ...this.quotas }),
    );
  }

  /** The object for `domid` if xenstored knows it or the hypervisor has it. */
  existingDomainObject(domid: number): Domain | undefined {
    return this.domains.get(domid) ?? (this.hypervisor.exists(domid) ? this.domainObject(domid) : undefined);
  }

  // --- memory accounting (C's domain_memory_add) --------------------------------

  /** Bytes C charges for a stored node: its record (header, permissions, value, child names) plus its key. */
  nodeBytes(keyLength: number, record: SizedRecord): number {
    return this.compat.nodeRecordHeader + 8 * record.perms.length + record.value.length
      + (record.children?.byteLength ?? 0) + keyLength;
  }

  /** Charges (+1) or refunds (-1) a live node to its owner. */
  chargeNode(path: string, record: NodeContents, sign: 1 | -1): void {
    const owner = this.domains.get(record.perms[0]!.domid);
    if (owner) owner.memory += sign * this.nodeBytes(path.length, record);
  }

  /**
   * Everything charged to a domain: the live nodes it owns, the watches and
   * the transactions' private node copies of its connections, and the
   * output queued for it.
   */
  memoryOf(domain: Domain): number {
    return domain.memory + this.connectionMemoryOf(domain) + domain.outputMemory;
  }

  /** What the domain's connections' watches and transaction copies take. */
  connectionMemoryOf(domain: Domain): number {
    for (const [tx, client] of this.unsettledTransactions) this.chargeConnection(client, tx.settle((key, record) => this.nodeBytes(key, record)));
    this.unsettledTransactions.clear();
    return domain.connectionMemory;
  }

  /** The domain a client's watches and transactions are charged to (socket clients: dom0). */
  connectionAccount(client: Requester): Domain | undefined {
    return client.domain ?? this.domains.get(client.domid);
  }

  /** The bytes of a transaction's copies measured from scratch (what checkStore recounts against). */
  transactionBytes(tx: StoreTransaction): number {
    const prefix = String(tx.startGen).length + 1;
    let bytes = 0;
    for (const [path, touched] of tx.touched) if (touched.record) bytes += this.nodeBytes(prefix + path.length, touched.record);
    return bytes;
  }

  private chargeConnection(client: Requester, bytes: number): void {
    const account = this.connectionAccount(client);
    if (account) account.connectionMemory += bytes;
  }

  /** Recounts every domain's node memory from the tree (after a restore or import). */
  recountNodeMemory(): void {
    for (const domain of this.domains.all()) domain.memory = 0;
    for (const [path, node] of this.specialNodes) this.chargeNode(path, node, +1);
    const pending: [string, Node][] = [['/', this.root]];
    for (let next = pending.pop(); next; next = pending.pop()) {
      const [path, node] = next;
      this.chargeNode(path, node, +1);
      for (const [name, child] of node.children?.children() ?? []) pending.push([childPath(path, name), child!]);
    }
  }

  /** Changes the owner's node count for a node with `perms`. */
  countNode(perms: Perms, delta: number, client: Requester | undefined): void {
    const domid = perms[0]!.domid;
    const domain = client?.domain && client.domid === domid ? client.domain : this.existingDomainObject(domid);
    if (domain) domain.nodeCount += delta;
  }

  changeOwner(oldPerms: Perms, newPerms: Perms, client: Requester | undefined): void {
    this.countNode(oldPerms, -1, client);
    this.countNode(newPerms, +1, client);
  }

  // --- stale permission entries ----------------------------------------------

  /**
   * A non-owner entry is stale when xenstored does not know its domain, or
   * learnt of it after the node was last written (a recycled domid must not
   * inherit old grants).
   */
  private withStaleMarked(perms: Perms, gen: number): Perms {
    if (perms.length === 1) return perms;
    let changed = false;
    const entries = perms.map((e, i) => {
      if (i === 0 || e.stale || e.domid === this.compat.anyDomid) return e;
      const domain = this.domains.get(e.domid);
      if (domain && domain.generation <= gen) return e;
      changed = true;
      return { ...e, stale: true };
    });
    return changed ? this.perms.intern(entries) : perms;
  }

  /** The node as a reader sees it: stale entries marked. */
  withCurrentPerms(node: Node): NodeContents {
    const perms = this.withStaleMarked(node.perms, node.gen);
    return perms === node.perms ? node : { value: node.value, perms, gen: node.gen, children: node.children };
  }

  /** Permissions as stored by a write that took generation `gen`. */
  persistPerms(perms: Perms, gen: number): Perms {
    return this.withStaleMarked(perms, gen);
  }

  /**
   * Stale-marks the entries of a new permission list (SET_PERMS) that name
   * no existing domain, and creates objects for the ones that exist.
   * DOMID_ANY (master) is stale unless the caller has that feature.
   */
  resolvePermDomains(perms: readonly PermEntry[], caller: Requester): Perms {
    const entries = perms.map((e) => {
      if (e.domid === this.compat.anyDomid) {
        return requesterFeatures(caller) & Feature.DOMID_ANY ? e : { ...e, stale: true };
      }
      if (this.domains.get(e.domid) || this.hypervisor.exists(e.domid)) {
        this.domainObject(e.domid);
        return e;
      }
      return { ...e, stale: true };
    });
    return this.perms.intern(entries);
  }
}
