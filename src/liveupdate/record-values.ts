/**
 * The mapping between the stream's records and the store's saved values,
 * in both directions, for the parts a whole-state dump and a per-domain
 * export share: permissions, watches, a transaction's records. Nothing
 * here touches a store.
 */
import type { PermEntry } from '../store/permissions.js';
import { permBits, permChar } from '../store/permissions.js';
import { NO_GENERATION, type SavedTouchedNode, type SavedTransaction } from '../store/transaction.js';
import type { SavedNode } from '../store/node.js';
import type { SavedWatch } from '../store/watches.js';
import { NodeAccess, type NodePerm, type NodeRecord, type StreamRecord, type WatchRecord } from '../stream/records.js';

export function permsToRecord(perms: readonly PermEntry[]): NodePerm[] {
  return perms.map((e) => ({ perm: permChar(e.bits), stale: e.stale, domid: e.domid & 0xffff }));
}

export function permsFromRecord(perms: readonly NodePerm[]): PermEntry[] {
  return perms.map((p) => ({ bits: permBits(p.perm) ?? 0, domid: p.domid, stale: p.stale }));
}

export function committedNodeRecord(node: SavedNode): NodeRecord {
  return { kind: 'node', connId: 0, txId: 0, path: node.path, value: Buffer.from(node.value, 'latin1'), access: 0, perms: permsToRecord(node.perms) };
}

/** A committed node as the store imports it: the generation comes separately, if at all. */
export function committedNodeFrom(r: NodeRecord): { path: string; value: string; perms: PermEntry[] } {
  return { path: r.path, value: r.value.toString('latin1'), perms: permsFromRecord(r.perms) };
}

/** WATCH_DATA, or WATCH_DATA_EXTENDED for a watch with a depth (version 2 only). */
export function watchRecord(connId: number, watch: SavedWatch): WatchRecord {
  return { kind: 'watch', connId, path: watch.path, token: watch.token, ...(watch.depth === undefined ? {} : { depth: watch.depth }) };
}

/** The entries permsToRecord cuts to 16 bits: index and full domid. */
export function wideEntries(perms: readonly PermEntry[]): [number, number][] {
  const out: [number, number][] = [];
  perms.forEach((e, i) => {
    if (e.domid > 0xffff) out.push([i, e.domid]);
  });
  return out;
}

export function watchFrom(r: WatchRecord): SavedWatch {
  return { path: r.path, token: r.token, depth: typeof r.depth === 'number' ? r.depth : undefined };
}

/** TRANSACTION_DATA, then one NODE_DATA per node the transaction holds a copy of or deleted. */
export function transactionRecords(connId: number, tx: SavedTransaction): StreamRecord[] {
  const records: StreamRecord[] = [{ kind: 'transaction', connId, txId: tx.id }];
  for (const t of tx.touched) {
    if (!t.record && !t.modified) continue;
    records.push({
      kind: 'node', connId, txId: tx.id, path: t.path,
      value: Buffer.from(t.record?.value ?? '', 'latin1'),
      access: t.record ? (t.modified ? NodeAccess.WRITTEN : 0) | (t.checkGen ? NodeAccess.READ : 0) : NodeAccess.DELETED,
      perms: t.record ? permsToRecord(t.record.perms) : [],
    });
  }
  return records;
}

/**
 * A transaction known only from TRANSACTION_DATA and its NODE_DATA: the
 * history its conflicts are judged by is not in the stream, so committing
 * it answers EAGAIN, as the stream's design says.
 */
export function transactionFrom(txId: number, startGen: number): SavedTransaction {
  return { id: txId, startGen, failed: false, createdNode: false, historyUnknown: true, nodeCountDelta: [], touched: [] };
}

/** A transaction's pending NODE_DATA as a touched node (what the standard records can say). */
export function touchedFrom(r: NodeRecord): SavedTouchedNode {
  const deleted = r.access === NodeAccess.DELETED && r.perms.length === 0;
  const perms = deleted ? null : permsFromRecord(r.perms);
  return {
    path: r.path,
    checkGen: (r.access & NodeAccess.READ) !== 0,
    gen: NO_GENERATION,
    oldPerms: perms,
    modified: (r.access & NodeAccess.WRITTEN) !== 0 || deleted,
    record: perms && { value: r.value.toString('latin1'), perms, gen: 0, children: null },
    fire: undefined,
  };
}
