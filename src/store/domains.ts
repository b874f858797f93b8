/**
 * xenstored's own domain objects: the domains it has heard of (introduced,
 * owning nodes, named in permissions), with their node counts, features and
 * quota copies. Objects are created in the same situations as in C
 * xenstored, because their creation generation decides stale permissions.
 */
import type { Quotas } from './quotas.js';

export class Domain {
  introduced = false;
  /** Shutdown already announced with @releaseDomain (cleared by RESUME). */
  shutdownReported = false;
  /** Nodes owned (committed). */
  nodeCount = 0;
  /** Bytes charged for the live nodes it owns. */
  memory = 0;
  /**
   * Bytes charged for its connections' watches and transaction copies
   * (read it through Store.connectionMemoryOf, which settles recent copies).
   */
  connectionMemory = 0;
  /** Bytes of output queued for its ring connection (kept by the connection). */
  outputMemory = 0;
  /** Event channel port given at INTRODUCE. */
  port = 0;
  uniqueId = 0n;

  constructor(
    readonly domid: number,
    /** Global generation when xenstored first heard of the domain. */
    public generation: number,
    public features: number,
    public quotas: Quotas,
  ) {}
}

/** A domain object as saved. `nodeCount` is derived: loading recounts it from the nodes. */
export interface SavedDomain {
  domid: number;
  generation: number;
  introduced: boolean;
  shutdownReported: boolean;
  nodeCount: number;
  memory: number;
  port: number;
  uniqueId: bigint;
  features: number;
  quotas: Quotas;
}

export function saveDomain(d: Domain): SavedDomain {
  return {
    domid: d.domid, generation: d.generation, introduced: d.introduced, shutdownReported: d.shutdownReported,
    nodeCount: d.nodeCount, memory: d.memory, port: d.port, uniqueId: d.uniqueId, features: d.features, quotas: { ...d.quotas },
  };
}

/** What a restore may know of a domain: the fields not given keep the new object's values. */
export type DomainUpdate = Partial<Omit<SavedDomain, 'quotas'>> & { domid: number; quotas?: Partial<Quotas> };

/** Gives `domain` the saved fields given (all but the node count, which the store recounts). */
export function loadDomain(domain: Domain, saved: DomainUpdate): void {
  if (saved.generation !== undefined) domain.generation = saved.generation;
  if (saved.introduced !== undefined) domain.introduced = saved.introduced;
  if (saved.shutdownReported !== undefined) domain.shutdownReported = saved.shutdownReported;
  if (saved.memory !== undefined) domain.memory = saved.memory;
  if (saved.port !== undefined) domain.port = saved.port;
  if (saved.uniqueId !== undefined) domain.uniqueId = saved.uniqueId;
  if (saved.features !== undefined) domain.features = saved.features;
  if (saved.quotas !== undefined) Object.assign(domain.quotas, saved.quotas);
}

export class DomainTable {
  private readonly byId = new Map<number, Domain>();

  get(domid: number): Domain | undefined {
    return this.byId.get(domid);
  }

  add(domain: Domain): Domain {
    this.byId.set(domain.domid, domain);
    return domain;
  }

  delete(domid: number): void {
    this.byId.delete(domid);
  }

  /** Puts the domains `first` (in that order) before the others, which keep their order. */
  reorder(first: readonly number[]): void {
    const rest = [...this.byId.values()];
    this.byId.clear();
    for (const domid of first) {
      const domain = rest.find((d) => d.domid === domid);
      if (domain) this.byId.set(domid, domain);
    }
    for (const domain of rest) if (!this.byId.has(domain.domid)) this.byId.set(domain.domid, domain);
  }

  all(): IterableIterator<Domain> {
    return this.byId.values();
  }

  introduced(domid: number): Domain | undefined {
    const d = this.byId.get(domid);
    return d?.introduced ? d : undefined;
  }
}
