/**
 * TRANSACTION_START and TRANSACTION_END: ids per client from 1, and the
 * commit that checks every touched node for conflicts, applies the private
 * copies to the live tree and fires the recorded events in first-touch order.
 */
import { ChildList } from './child-list.js';
import type { Domain } from './domains.js';
import type { Requester } from './requester.js';
import { fail } from './errors.js';
import { deliverEventBatches, type ChangeContext } from './events.js';
import { Node, type NodeContents } from './node.js';
import { baseName, childPath, depth, parentPath } from './path.js';
import { enforce } from './quota-gate.js';
import type { Store } from './store.js';
import { NO_GENERATION, StoreTransaction, type TouchedNode } from './transaction.js';
import type { MatchMode } from './watches.js';

export function startTransaction(store: Store, client: Requester): StoreTransaction {
  enforce(store, client, 'transactions', client.transactions.size);
  const tx = new StoreTransaction(nextTransactionId(client), store.nextGeneration());
  if (client.transactions.size === 0) client.transactionsSince = store.now();
  store.openTransaction(client, tx);
  return tx;
}

/** The next free id: never 0, never one still open, wrapping at 32 bits. */
function nextTransactionId(client: Requester): number {
  for (;;) {
    const id = client.nextTransactionId;
    client.nextTransactionId = (id + 1) >>> 0;
    if (id !== 0 && !client.transactions.has(id)) return id;
  }
}

/** Ends `tx`; it is gone whatever the outcome. */
export function endTransaction(store: Store, client: Requester, tx: StoreTransaction, commit: boolean): void {
  store.closeTransaction(client, tx);
  if (!commit) return;
  if (tx.failed) fail('ENOMEM', 'transaction failed earlier');
  fixDomains(store, client, tx);
  if (tx.historyUnknown) fail('EAGAIN', 'transaction restored without its history');
  for (const [path, touched] of tx.touched) {
    if (touched.checkGen && (store.lookup(path)?.gen ?? NO_GENERATION) !== touched.gen) fail('EAGAIN', `conflict on ${path}`);
  }
  applyCommit(store, client, tx);
}

/**
 * C's transaction_fix_domains before the commit: every domain whose node
 * count changed gets its object now (before the commit's generations, and
 * even if the commit then conflicts), and after a node was created each
 * count is judged against the node quota.
 */
function fixDomains(store: Store, client: Requester, tx: StoreTransaction): void {
  for (const [domid, delta] of tx.nodeCountDelta) {
    const domain = store.existingDomainObject(domid);
    if (tx.createdNode && domid !== 0) enforce(store, client, 'committed-nodes', Math.max(0, (domain?.nodeCount ?? 0) + delta));
  }
}

function applyCommit(store: Store, client: Requester, tx: StoreTransaction): void {
  const modified = [...tx.touched].filter(([, t]) => t.modified);
  const events = commitEvents(store, modified);
  const before = modified.map(([path]) => liveCharge(store, path));
  recharge(store, modified, -1);
  const written: [string, Node][] = [];
  for (const [path, touched] of modified) {
    if (touched.record) written.push([path, new Node(touched.record.value, touched.record.perms, store.nextGeneration())]);
  }
  for (const [path, touched] of modified) {
    if (!touched.record && touched.gen !== NO_GENERATION) detach(store, path);
  }
  // Parents before children, so every new node has somewhere to hang.
  const byDepth = written.map(([path, fresh]) => ({ path, fresh, depth: depth(path) })).sort((a, b) => a.depth - b.depth);
  for (const { path, fresh } of byDepth) {
    const live = store.lookup(path);
    if (live) {
      live.value = fresh.value;
      live.perms = fresh.perms;
      live.gen = fresh.gen;
    } else {
      const parent = store.lookup(parentPath(path));
      if (!parent) continue; // Only reachable after a conflict, which was refused above.
      parent.children = (parent.children ?? new ChildList()).writable();
      parent.children.add(baseName(path), fresh);
    }
  }
  for (const [path] of written) rebuildChildren(store, path, tx.touched.get(path)!.record!.children);
  for (const [domid, delta] of tx.nodeCountDelta) {
    // Counted as outside a transaction: only domains xenstored knows or the hypervisor has (checkStore recounts the same way).
    const domain = delta === 0 ? undefined : store.existingDomainObject(domid);
    if (domain) domain.nodeCount += delta;
  }
  recharge(store, modified, +1);
  deliverNodeByNode(store, client, tx, modified, events, before);
}

/** What the live node at `path` costs its owner, if it has an object. */
interface Charge {
  readonly domain: Domain;
  readonly bytes: number;
}

function liveCharge(store: Store, path: string): Charge | undefined {
  const live = store.lookup(path);
  const domain = live && store.domains.get(live.perms[0]!.domid);
  return domain && { domain, bytes: store.nodeBytes(path.length, live!) };
}

/**
 * C commits node by node: it drops the transaction's copy, writes the node
 * and fires its event, then goes on to the next. All nodes are written
 * here first, so while one node's event is judged against the memory
 * quota, what the nodes after it held before the commit (their old records
 * and their copies, charged to the transaction's client) is lent back.
 */
function deliverNodeByNode(
  store: Store, client: Requester, tx: StoreTransaction, modified: [string, TouchedNode][],
  events: ([string, MatchMode, ChangeContext] | undefined)[], before: (Charge | undefined)[],
): void {
  const copyKeyPrefix = String(tx.startGen).length + 1;
  const owner = store.domains.get(client.domid);
  const lags = modified.map(([path, touched], i): Charge[] => {
    const after = liveCharge(store, path);
    return [
      ...(before[i] ? [before[i]!] : []),
      ...(after ? [{ domain: after.domain, bytes: -after.bytes }] : []),
      ...(owner && touched.record ? [{ domain: owner, bytes: store.nodeBytes(copyKeyPrefix + path.length, touched.record) }] : []),
    ];
  });
  const lend = (lag: Charge[], sign: 1 | -1): void => {
    for (const { domain, bytes } of lag) domain.memory += sign * bytes;
  };
  for (const lag of lags) lend(lag, +1);
  deliverEventBatches(store, events, (i) => lend(lags[i]!, -1));
}

/** Refunds (before the commit) or charges (after it) the live nodes a commit changes. */
function recharge(store: Store, modified: [string, TouchedNode][], sign: 1 | -1): void {
  for (const [path] of modified) {
    const live = store.lookup(path);
    if (live) store.chargeNode(path, live, sign);
  }
}

/**
 * The events a commit fires, each judged as C judges it: right after its
 * own node is written, so against the new state of the nodes written
 * before it and the old state of those written after.
 */
function commitEvents(store: Store, modified: [string, TouchedNode][]): ([string, MatchMode, ChangeContext] | undefined)[] {
  const order = new Map(modified.map(([path], i) => [path, i]));
  return modified.map(([path, touched], i): [string, MatchMode, ChangeContext] | undefined => {
    if (!touched.fire) return undefined;
    const parentPathName = parentPath(path);
    const parentIndex = order.get(parentPathName);
    const parent = parentIndex !== undefined && parentIndex < i
      ? modified[parentIndex]![1].record
      : snapshot(store, parentPathName);
    return [path, touched.fire, { record: touched.record, oldPerms: touched.oldPerms, parent }];
  });
}

/** The live node as it is now, unaffected by the changes about to be applied. */
function snapshot(store: Store, path: string): NodeContents | null {
  const live = store.lookup(path);
  if (!live) return null;
  const { value, perms, gen, children } = store.withCurrentPerms(live);
  return { value, perms, gen, children };
}

function detach(store: Store, path: string): void {
  const parent = store.lookup(parentPath(path));
  if (parent?.children?.has(baseName(path))) {
    parent.children = parent.children.writable();
    parent.children.delete(baseName(path));
  }
}

/** Gives a committed node exactly the child list the transaction left it with. */
function rebuildChildren(store: Store, path: string, names: ChildList | null): void {
  const node = store.lookup(path)!;
  const rebuilt = new ChildList();
  for (const name of names?.names() ?? []) {
    const child = node.children?.get(name) ?? store.lookup(childPath(path, name));
    if (child) rebuilt.add(name, child);
  }
  node.children = rebuilt.size > 0 ? rebuilt : null;
}
