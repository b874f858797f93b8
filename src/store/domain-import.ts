/**
 * Adds one domain arriving by per-domain migration to a running store. The
 * stream comes from outside, so nothing in it is trusted: every imported
 * node must belong to the domain (its home subtree, or a node it owns that
 * the receiver does not have), the domain's quotas on this store apply,
 * and everything is checked before anything changes. Nodes are linked
 * without recursion, so a deep chain costs linear time.
 */
import { Requester, loadRequester, type SavedRequester } from './requester.js';
import { ChildList } from './child-list.js';
import { Node } from './node.js';
import { baseName, localDomainPrefixLength, parentPath } from './path.js';
import type { Perms } from './permissions.js';
import { isQuotaName, type QuotaName } from './quotas.js';
import { quotaFor } from './quota-gate.js';
import type { Store } from './store.js';
import { StoreImportError, type ImportedNode } from './store-import.js';

export interface ImportedDomain {
  domid: number;
  port: number;
  /** Feature bits and quotas from the stream; quotas may not exceed this store's. */
  features: number | undefined;
  quotas: { name: string; value: number }[];
  /** The ring client: watches and open transactions (they fail with EAGAIN at commit). */
  client: SavedRequester;
  nodes: ImportedNode[];
}

/** Checks `imported` against the store, then adds it; returns the domain's new ring client. */
export function importDomain(store: Store, imported: ImportedDomain): Requester {
  const { domid } = imported;
  if (store.domains.introduced(domid)) throw new StoreImportError(`domain ${domid} is already introduced here`);
  if (!store.hypervisor.exists(domid)) throw new StoreImportError(`domain ${domid} does not exist here`);
  const home = `/local/domain/${domid}`;
  // Quotas as they will apply to the domain's ring client (not registered until the checks pass).
  const probe = new Requester(0, domid, false, home, store.domains.get(domid), store.compat.anyDomid);
  const limit = (name: QuotaName): number => quotaFor(store, probe, name);
  const over = (count: number, name: QuotaName): boolean => limit(name) > 0 && count > limit(name);

  const quotas = checkQuotas(imported.quotas, limit);
  const plan = planNodes(store, domid, home, imported.nodes, limit);
  const owned = (store.domains.get(domid)?.nodeCount ?? 0) + plan.ownedDelta;
  if (over(owned, 'nodes')) throw new StoreImportError(`domain ${domid} would own ${owned} nodes, over its quota of ${limit('nodes')}`);
  if (over(imported.client.watches.length, 'watches')) throw new StoreImportError(`${imported.client.watches.length} watches, over the quota of ${limit('watches')}`);
  if (over(imported.client.transactions.length, 'transactions')) {
    throw new StoreImportError(`${imported.client.transactions.length} transactions, over the quota of ${limit('transactions')}`);
  }
  for (const tx of imported.client.transactions) {
    if (over(tx.touched.length, 'transaction-nodes')) throw new StoreImportError(`transaction ${tx.id} holds ${tx.touched.length} nodes, over the quota of ${limit('transaction-nodes')}`);
  }

  // Checked: now change the store.
  const domain = store.domainObject(domid);
  domain.introduced = true;
  domain.shutdownReported = false;
  domain.port = imported.port;
  domain.uniqueId = store.hypervisor.info(domid)!.uniqueId;
  if (imported.features !== undefined) domain.features = imported.features;
  Object.assign(domain.quotas, quotas);
  applyNodes(store, plan);
  // Memory follows from the nodes, as after a restore.
  store.recountNodeMemory();
  const client = store.addDomainClient(domain);
  loadRequester(client, {
    ...imported.client,
    target: imported.client.target !== undefined && store.domains.introduced(imported.client.target) ? imported.client.target : undefined,
    transactions: imported.client.transactions.map((tx) => ({ ...tx, startGen: store.nextGeneration(), historyUnknown: true })),
    nextTransactionId: Math.max(imported.client.nextTransactionId, ...imported.client.transactions.map((tx) => tx.id + 1)),
  }, store);
  return client;
}

function checkQuotas(entries: { name: string; value: number }[], limit: (name: QuotaName) => number): Partial<Record<QuotaName, number>> {
  const quotas: Partial<Record<QuotaName, number>> = {};
  for (const { name, value } of entries) {
    if (!isQuotaName(name)) continue;
    const mine = limit(name);
    if (mine > 0 && (value === 0 || value > mine)) throw new StoreImportError(`quota ${name} of ${value} in the stream exceeds this daemon's ${mine}`);
    quotas[name] = value;
  }
  return quotas;
}

interface NodePlan {
  /** Ancestors of the home path this store lacks: created as a write by dom0 would. */
  ancestors: string[];
  nodes: { path: string; value: string; perms: Perms; existing: Node | undefined }[];
  ownedDelta: number;
}

function planNodes(store: Store, domid: number, home: string, nodes: ImportedNode[], limit: (name: QuotaName) => number): NodePlan {
  const seen = new Set<string>();
  const plan: NodePlan = { ancestors: [], nodes: [], ownedDelta: 0 };
  for (let p = parentPath(home); p !== '/' && !store.lookup(p); p = parentPath(p)) plan.ancestors.unshift(p);
  const pathMax = limit('path-max');
  const nodeSize = limit('node-size');
  const permsMax = limit('node-permissions');
  for (const n of nodes) {
    const perms = store.perms.intern(n.perms);
    const owner = perms[0]!.domid;
    const inHome = n.path === home || n.path.startsWith(`${home}/`);
    const existing = store.lookup(n.path);
    if (!inHome && (owner !== domid || existing)) {
      throw new StoreImportError(`${n.path} is outside /local/domain/${domid} and ${existing ? 'exists here' : `owned by domain ${owner}`}`);
    }
    const parent = parentPath(n.path);
    if (n.path !== home && !seen.has(parent) && !store.lookup(parent)) throw new StoreImportError(`the parent of ${n.path} is neither here nor earlier in the stream`);
    seen.add(n.path);
    if (pathMax > 0 && n.path.length - localDomainPrefixLength(n.path) > pathMax) throw new StoreImportError(`${n.path.slice(0, 64)}… is longer than the path-max quota of ${pathMax}`);
    if (nodeSize > 0 && n.value.length > nodeSize) throw new StoreImportError(`${n.path} holds ${n.value.length} bytes, over the node-size quota of ${nodeSize}`);
    if (permsMax > 0 && perms.length - 1 > permsMax) throw new StoreImportError(`${n.path} has ${perms.length} permissions, over the quota of ${permsMax}`);
    if (owner === domid) plan.ownedDelta++;
    if (existing && existing.perms[0]!.domid === domid) plan.ownedDelta--;
    plan.nodes.push({ path: n.path, value: n.value, perms, existing });
  }
  return plan;
}

function applyNodes(store: Store, plan: NodePlan): void {
  const added = new Map<string, Node>();
  const link = (path: string, node: Node): void => {
    const parentName = parentPath(path);
    const parent = added.get(parentName) ?? store.lookup(parentName)!;
    parent.children = (parent.children ?? new ChildList()).writable();
    parent.children.add(baseName(path), node);
    added.set(path, node);
    store.countNode(node.perms, +1, undefined);
  };
  for (const path of plan.ancestors) link(path, new Node('', (added.get(parentPath(path)) ?? store.lookup(parentPath(path))!).perms, store.nextGeneration()));
  for (const n of plan.nodes) {
    if (n.existing) {
      store.changeOwner(n.existing.perms, n.perms, undefined);
      n.existing.value = n.value;
      n.existing.perms = n.perms;
      n.existing.gen = store.nextGeneration();
    } else {
      link(n.path, new Node(n.value, n.perms, store.nextGeneration()));
    }
  }
}
