/**
 * One open transaction: the nodes it touched, in first-touch order, each
 * with the generation seen then (for conflict checks), its private copy and
 * the watch events to fire at commit.
 */
import { ChildList } from './child-list.js';
import type { NodeContents } from './node.js';
import type { PermEntry, Perms, PermsTable } from './permissions.js';
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
  /**
   * Bytes charged for the private copies (C keys them `<startGen>/<path>`)
   * as last settled; copies touched since are re-measured by settle().
   */
  copyBytes = 0;
  private readonly charged = new Map<string, number>();
  private readonly unsettled = new Set<string>();

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

  /** The copy at `path` may have changed (it was read or touched): settle() re-measures it. */
  copyTouched(path: string): void {
    this.unsettled.add(path);
  }

  /** Re-measures the copies touched since the last call; returns the change in copyBytes. */
  settle(copySize: (keyLength: number, record: NodeContents) => number): number {
    const prefix = String(this.startGen).length + 1;
    let delta = 0;
    for (const path of this.unsettled) {
      const record = this.touched.get(path)?.record;
      const bytes = record ? copySize(prefix + path.length, record) : 0;
      delta += bytes - (this.charged.get(path) ?? 0);
      if (bytes > 0) this.charged.set(path, bytes);
      else this.charged.delete(path);
    }
    this.unsettled.clear();
    this.copyBytes += delta;
    return delta;
  }
}

/** A transaction's private copy of a node as saved; children by name only. */
export interface SavedNodeCopy {
  value: string;
  perms: readonly PermEntry[];
  gen: number;
  children: string[] | null;
}

export interface SavedTouchedNode {
  path: string;
  checkGen: boolean;
  gen: number;
  oldPerms: readonly PermEntry[] | null;
  modified: boolean;
  /** null: the node does not exist in the transaction's view. */
  record: SavedNodeCopy | null;
  fire: MatchMode | undefined;
}

export interface SavedTransaction {
  id: number;
  startGen: number;
  failed: boolean;
  createdNode: boolean;
  historyUnknown: boolean;
  nodeCountDelta: [number, number][];
  /** In first-touch order. */
  touched: SavedTouchedNode[];
}

export function saveTransaction(tx: StoreTransaction): SavedTransaction {
  return {
    id: tx.id, startGen: tx.startGen, failed: tx.failed, createdNode: tx.createdNode, historyUnknown: tx.historyUnknown,
    nodeCountDelta: [...tx.nodeCountDelta],
    touched: [...tx.touched].map(([path, t]) => ({
      path, checkGen: t.checkGen, gen: t.gen, oldPerms: t.oldPerms, modified: t.modified, fire: t.fire,
      record: t.record && {
        value: t.record.value, perms: t.record.perms, gen: t.record.gen,
        children: t.record.children ? [...t.record.children.names()] : null,
      },
    })),
  };
}

/** The transaction saved as `saved`; permission lists are interned in `perms` (the store's table). */
export function loadTransaction(saved: SavedTransaction, perms: PermsTable): StoreTransaction {
  const tx = new StoreTransaction(saved.id, saved.startGen);
  tx.failed = saved.failed;
  tx.createdNode = saved.createdNode;
  tx.historyUnknown = saved.historyUnknown;
  for (const [domid, delta] of saved.nodeCountDelta) tx.nodeCountDelta.set(domid, delta);
  for (const t of saved.touched) {
    const r = t.record;
    tx.touched.set(t.path, {
      checkGen: t.checkGen, gen: t.gen, oldPerms: t.oldPerms && perms.intern(t.oldPerms), modified: t.modified, fire: t.fire,
      // A copy's children are names only: the transaction reads each child through its own view.
      record: r && { value: r.value, perms: perms.intern(r.perms), gen: r.gen, children: r.children && new ChildList(new Map(r.children.map((c) => [c, undefined]))) },
    });
  }
  return tx;
}
