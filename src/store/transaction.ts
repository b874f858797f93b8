/**
 * One open transaction: the nodes it touched, in first-touch order, each
 * with the generation seen then (for conflict checks), its private copy and
 * the watch events to fire at commit.
 */
import type { NodeContents } from './node.js';
import type { Perms } from './permissions.js';
import type { MatchMode } from './watches.js';

/** Generation of a node that did not exist when first touched. */
export const NO_GENERATION = -1;

export interface TouchedNode {
  /** Compare `gen` with the live tree at commit. */
  checkGen: boolean;
  gen: number;
  /** Permissions before the transaction, for filtering commit events. */
  oldPerms: Perms | null;
  modified: boolean;
  /** The private copy; null while the node does not exist in this view. */
  record: NodeContents | null;
  fire: MatchMode | undefined;
}

export class StoreTransaction {
  readonly touched = new Map<string, TouchedNode>();
  /** Node-count change per owner domain, applied at commit. */
  readonly nodeCountDelta = new Map<number, number>();
  /** An operation failed half-way: committing answers ENOMEM. */
  failed = false;
  createdNode = false;
  /**
   * Restored from a stream without the history conflicts are judged by
   * (another daemon, a migrated domain): committing it answers EAGAIN.
   */
  historyUnknown = false;

  constructor(
    readonly id: number,
    /** Generation consumed by TRANSACTION_START. */
    readonly startGen: number,
  ) {}

  queueEvent(path: string, mode: MatchMode): void {
    const t = this.touched.get(path);
    if (!t) {
      this.failed = true;
      return;
    }
    if (t.fire === undefined || mode === 'subtree') t.fire = mode;
  }

  addNodeCount(domid: number, delta: number): void {
    this.nodeCountDelta.set(domid, (this.nodeCountDelta.get(domid) ?? 0) + delta);
  }
}
