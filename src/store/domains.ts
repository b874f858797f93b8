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
  /** Bytes charged for the live nodes it owns (Store.memoryOf adds watches and transaction copies). */
  memory = 0;
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

  all(): IterableIterator<Domain> {
    return this.byId.values();
  }

  introduced(domid: number): Domain | undefined {
    const d = this.byId.get(domid);
    return d?.introduced ? d : undefined;
  }
}
