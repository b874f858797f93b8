/**
 * The snapshot of a store's saved values: for an in-process daemon, the
 * same value snapshotOfStream gives for a dump of it, without writing and
 * reading back a stream (several times faster on a large store).
 */
import type { LiveUpdateHost } from '../liveupdate/host.js';
import { quotaEntries } from '../liveupdate/state-dump.js';
import { permChar, type PermEntry } from '../store/permissions.js';
import type { SavedRequester } from '../store/requester.js';
import { saveStore, type SavedStore } from '../store/saved-store.js';
import type { SavedTransaction } from '../store/transaction.js';
import {
  assembleSnapshot, nodesByPath, permText, quotaObject,
  type Snapshot, type SnapshotConnection, type SnapshotDomain, type SnapshotNode, type SnapshotOptions, type SnapshotTransaction,
} from './snapshot.js';

/** Permission lists are interned by the store, so most nodes share a few: each is turned into text once. */
function permsTexts(): (perms: readonly PermEntry[]) => string[] {
  const texts = new Map<readonly PermEntry[], string[]>();
  return (perms) => {
    let text = texts.get(perms);
    if (!text) {
      text = perms.map((e) => permText(permChar(e.bits), e.domid, e.stale));
      texts.set(perms, text);
    }
    return text.slice();
  };
}

/** What a dump writes of a transaction: the copies it wrote (null: deleted) and the nodes whose generation it checks. */
function transaction(tx: SavedTransaction, permsOf: (perms: readonly PermEntry[]) => string[]): SnapshotTransaction {
  const read: string[] = [];
  const wrote: Record<string, SnapshotNode | null> = {};
  for (const t of tx.touched) {
    if (!t.record) {
      if (t.modified) wrote[t.path] = null;
      continue;
    }
    if (t.modified) wrote[t.path] = { value: t.record.value, perms: permsOf(t.record.perms) };
    if (t.checkGen) read.push(t.path);
  }
  return { id: tx.id, read, wrote };
}

function connection(client: SavedRequester, permsOf: (perms: readonly PermEntry[]) => string[]): SnapshotConnection {
  return {
    ...(client.ring ? { kind: 'guest' as const, domid: client.domid } : { kind: 'socket' as const }),
    watches: client.watches.map((w) => ({ path: w.path, token: w.token, ...(w.depth === undefined ? {} : { depth: w.depth }) })),
    transactions: client.transactions.map((tx) => transaction(tx, permsOf)),
  };
}

/** `saved.clients` must hold the connected clients only: those a dump writes. */
export function snapshotOfSaved(saved: SavedStore, options: SnapshotOptions = {}): Snapshot {
  const permsOf = permsTexts();
  // 4.17's special paths: permissions only, no value and no generation.
  const items: { path: string; value: string; perms: readonly PermEntry[]; gen?: number }[] = saved.specialPerms.map(([path, perms]) => ({ path, value: '', perms }));
  for (const n of saved.nodes) items.push(n);
  const nodes = nodesByPath(items, (n) => (options.generations && n.gen !== undefined ? { value: n.value, perms: permsOf(n.perms), generation: n.gen } : { value: n.value, perms: permsOf(n.perms) }));
  const domains: Record<string, SnapshotDomain> = {};
  for (const c of saved.clients) if (c.ring) domains[c.domid] ??= {};
  for (const d of saved.domains) {
    domains[d.domid] = { ...domains[d.domid], quotas: quotaObject(quotaEntries(d.quotas, saved.softMemory)), features: d.features, nodes: d.nodeCount };
  }
  return assembleSnapshot({
    nodes,
    connections: saved.clients.map((c) => connection(c, permsOf)),
    domains,
    quotas: quotaObject(quotaEntries(saved.quotas, saved.softMemory)),
    generation: saved.generation,
  }, options);
}

/** The snapshot of a daemon in this process: the one a dump of it gives. */
export function snapshotOfDaemon(daemon: LiveUpdateHost, options: SnapshotOptions = {}): Snapshot {
  const saved = saveStore(daemon.store);
  // A client without a connection (made inside the daemon for one request) is not in a dump either.
  const connected = [...daemon.store.clients.values()].map((c) => daemon.connections.has(c.serial));
  return snapshotOfSaved({ ...saved, clients: saved.clients.filter((_, i) => connected[i]) }, options);
}
