/**
 * What the hypervisor would say about domains: which exist and in what
 * state. By default every ordinary domid exists and runs until destroyed
 * (like the reference kit's shim); in explicit mode only created ones exist.
 */
import { DOMID_FIRST_RESERVED } from '../wire/vocabulary.js';

export type DomainState = 'running' | 'shutdown' | 'crashed' | 'dying';
export const DOMAIN_STATES: readonly DomainState[] = ['running', 'shutdown', 'crashed', 'dying'];

export interface DomainInfo {
  readonly state: DomainState;
  /** Identifies one incarnation of a domid. */
  readonly uniqueId: bigint;
}

export class Hypervisor {
  private readonly domains = new Map<number, DomainInfo>();
  /** In implicit mode: ids destroyed and not created again. */
  private readonly destroyed = new Set<number>();
  private nextUniqueId = 1n;

  constructor(readonly implicit: boolean) {
    this.create(0);
  }

  info(domid: number): DomainInfo | undefined {
    const known = this.domains.get(domid);
    if (known) return known;
    if (!this.implicit || domid >= DOMID_FIRST_RESERVED || this.destroyed.has(domid)) return undefined;
    return this.materialize(domid);
  }

  exists(domid: number): boolean {
    return this.info(domid) !== undefined;
  }

  /** Creates a new incarnation (a fresh unique id); fails if it already exists. */
  create(domid: number): DomainInfo {
    if (this.domains.has(domid)) throw new Error(`domain ${domid} already exists`);
    this.destroyed.delete(domid);
    return this.materialize(domid);
  }

  setState(domid: number, state: DomainState): void {
    const info = this.info(domid);
    if (!info) throw new Error(`domain ${domid} does not exist`);
    this.domains.set(domid, { ...info, state });
  }

  destroy(domid: number): void {
    if (!this.info(domid)) throw new Error(`domain ${domid} does not exist`);
    this.domains.delete(domid);
    this.destroyed.add(domid);
  }

  /** Restores a domain as another daemon saw it (migration, live update). */
  adopt(domid: number, info: DomainInfo): void {
    this.destroyed.delete(domid);
    this.domains.set(domid, info);
    if (info.uniqueId >= this.nextUniqueId) this.nextUniqueId = info.uniqueId + 1n;
  }

  /** Everything needed to recreate this table (for a state dump). */
  describe(): { implicit: boolean; domains: [number, DomainState, string][]; destroyed: number[] } {
    return {
      implicit: this.implicit,
      domains: [...this.domains].map(([domid, info]) => [domid, info.state, info.uniqueId.toString()]),
      destroyed: [...this.destroyed],
    };
  }

  /** Recreates the table from `describe()`'s output. */
  load(saved: { domains: [number, DomainState, string][]; destroyed: number[] }): void {
    this.domains.clear();
    for (const [domid, state, uniqueId] of saved.domains) this.adopt(domid, { state, uniqueId: BigInt(uniqueId) });
    this.destroyed.clear();
    for (const domid of saved.destroyed) this.destroyed.add(domid);
  }

  private materialize(domid: number): DomainInfo {
    const info = { state: 'running' as const, uniqueId: this.nextUniqueId++ };
    this.domains.set(domid, info);
    return info;
  }
}
