/**
 * The observable state in a migration stream as a plain, canonical,
 * JSON-serialisable value, so that two states compare with a deep equality
 * (`expect(a).toEqual(b)`). It reads any stream the codec reads, C
 * xenstored's included; what only xenstored-sim's own records carry (node
 * counts, generation numbers) is present only when the stream has it.
 *
 * Left out on purpose: stream-local ids (connection ids are positions),
 * socket descriptors and bytes in flight — they differ between two dumps of
 * the same state.
 */
import { iterateStream } from '../stream/stream-reader.js';
import { NodeAccess, type NodePerm, type QuotaEntry, type StreamRecord } from '../stream/records.js';
import { decodeGenerations, decodeSimState, SimRecordType, type SimState } from '../stream/sim-extension.js';

/** A node: its value (bytes as latin1 text) and permissions, owner first, as `xenstore-ls -p` writes them (`n0`, `r5`). */
export interface SnapshotNode {
  value: string;
  perms: string[];
  /** Only with `{ generations: true }` and a stream that carries them. */
  generation?: number;
}

export interface SnapshotWatch {
  path: string;
  token: string;
  depth?: number | 'unlimited';
}

/** An open transaction: what it read, and what it wrote (null: deleted). */
export interface SnapshotTransaction {
  id: number;
  read: string[];
  wrote: Record<string, SnapshotNode | null>;
}

export interface SnapshotConnection {
  /** 'socket' for a local (dom0) client, else the guest domain's id. */
  kind: 'socket' | 'guest';
  domid?: number;
  /** Sorted by path, then token. */
  watches: SnapshotWatch[];
  transactions: SnapshotTransaction[];
}

export interface SnapshotDomain {
  /** Quotas set for this domain (stream order); absent when the stream has no DOMAIN_DATA. */
  quotas?: Record<string, number>;
  features?: number;
  /** Nodes the domain owns; only in xenstored-sim's streams. */
  nodes?: number;
}

export interface Snapshot {
  nodes: Record<string, SnapshotNode>;
  /** In connection order (the order the daemon accepted them). */
  connections: SnapshotConnection[];
  domains: Record<string, SnapshotDomain>;
  /** The per-domain defaults; absent when the stream has no GLOBAL_QUOTA_DATA. */
  quotas?: Record<string, number>;
  /** The store's generation counter: only with `{ generations: true }` and xenstored-sim's streams. */
  generation?: number;
}

export interface SnapshotOptions {
  /** Include node generation numbers and the store's generation counter (default false). */
  generations?: boolean;
}

/** A permission entry as text, with the domid as the stream's records carry it (16 bits). */
export const permText = (perm: string, domid: number, stale: boolean): string => `${perm}${domid & 0xffff}${stale ? '(stale)' : ''}`;
export const quotaObject = (entries: readonly QuotaEntry[]): Record<string, number> => Object.fromEntries(entries.map((q) => [q.name, q.value]));
const recordPerms = (perms: readonly NodePerm[]): string[] => perms.map((p) => permText(p.perm, p.domid, p.stale));
const node = (value: Buffer, perms: readonly NodePerm[]): SnapshotNode => ({ value: value.toString('latin1'), perms: recordPerms(perms) });

const byKey = (a: [string, unknown], b: [string, unknown]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** An object with the entries' keys in sorted order (so that JSON.stringify is canonical too). */
function sortedObject<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries(entries.sort(byKey));
}

/**
 * The nodes as an object keyed by path, in sorted order. Sorts `items` in
 * place and builds no pair per node: a large store's snapshot is mostly this.
 */
export function nodesByPath<T extends { path: string }>(items: T[], toNode: (item: T) => SnapshotNode): Record<string, SnapshotNode> {
  items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: Record<string, SnapshotNode> = {};
  for (const item of items) out[item.path] = toNode(item);
  return out;
}

/** What either source (a stream, a store's saved values) gathers; only the nodes are in canonical order already. */
export interface SnapshotParts {
  nodes: Record<string, SnapshotNode>;
  connections: SnapshotConnection[];
  domains: Record<string, SnapshotDomain>;
  quotas: Record<string, number> | undefined;
  generation: number | undefined;
}

/** The parts in canonical order: one function, so that both sources give equal snapshots of equal states. */
export function assembleSnapshot(parts: SnapshotParts, options: SnapshotOptions): Snapshot {
  const byWatch = (a: SnapshotWatch, b: SnapshotWatch) => (a.path === b.path ? (a.token < b.token ? -1 : a.token > b.token ? 1 : 0) : a.path < b.path ? -1 : 1);
  for (const conn of parts.connections) {
    conn.watches.sort(byWatch);
    for (const tx of conn.transactions) {
      tx.read.sort();
      tx.wrote = sortedObject(Object.entries(tx.wrote));
    }
  }
  return {
    nodes: parts.nodes,
    connections: parts.connections,
    domains: parts.domains,
    ...(parts.quotas ? { quotas: parts.quotas } : {}),
    ...(options.generations && parts.generation !== undefined ? { generation: parts.generation } : {}),
  };
}

/** The snapshot of a migration stream; throws StreamError when the stream is malformed. */
export function snapshotOfStream(stream: Uint8Array, options: SnapshotOptions = {}): Snapshot {
  const buf = Buffer.isBuffer(stream) ? stream : Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength);
  // Converted as they come: a stream's records are large, holding them all costs more than the conversion.
  const committed: { path: string; node: SnapshotNode }[] = [];
  const connections = new Map<number, SnapshotConnection>();
  const transactions = new Map<string, SnapshotTransaction>();
  const domains: Record<string, SnapshotDomain> = {};
  let quotas: Record<string, number> | undefined;
  let sim: SimState | undefined;
  let generations: Buffer | undefined;

  const apply = (r: StreamRecord): void => {
    switch (r.kind) {
      case 'connection':
        connections.set(r.connId, r.connType === 'socket' ? { kind: 'socket', watches: [], transactions: [] } : { kind: 'guest', domid: r.domid, watches: [], transactions: [] });
        if (r.connType === 'ring') domains[r.domid] ??= {};
        return;
      case 'watch':
        connections.get(r.connId)?.watches.push({ path: r.path, token: r.token, ...(r.depth === undefined ? {} : { depth: r.depth }) });
        return;
      case 'transaction': {
        const tx: SnapshotTransaction = { id: r.txId, read: [], wrote: {} };
        transactions.set(`${r.connId}/${r.txId}`, tx);
        connections.get(r.connId)?.transactions.push(tx);
        return;
      }
      case 'node': {
        if (r.connId === 0) {
          committed.push({ path: r.path, node: node(r.value, r.perms) });
          return;
        }
        const tx = transactions.get(`${r.connId}/${r.txId}`);
        if (!tx) return;
        if (r.access === NodeAccess.DELETED && r.perms.length === 0) tx.wrote[r.path] = null;
        if (r.access & NodeAccess.WRITTEN) tx.wrote[r.path] = node(r.value, r.perms);
        if (r.access & NodeAccess.READ) tx.read.push(r.path);
        return;
      }
      case 'globalQuota':
        quotas = quotaObject(r.domainQuotas);
        return;
      case 'domain':
        domains[r.domid] = { ...domains[r.domid], quotas: quotaObject(r.quotas), features: r.features };
        return;
      case 'unknown':
        if (r.type === SimRecordType.STATE) sim = decodeSimState(r.body);
        else if (r.type === SimRecordType.NODE_GENERATIONS) generations = r.body;
        return;
      case 'global':
        return;
    }
  };
  for (const { record } of iterateStream(buf)) apply(record);

  for (const d of sim?.domains ?? []) domains[d.domid] = { ...domains[d.domid], nodes: d.nodeCount };
  if (options.generations && generations) {
    // The generations are those of the tree's nodes: 4.17's special paths (permissions only) have none.
    const special = new Set(sim?.specialPerms.map(([path]) => path));
    const tree = committed.filter((c) => !special.has(c.path));
    const gens = decodeGenerations(generations, tree.length);
    tree.forEach((c, i) => (c.node.generation = gens[i]!));
  }
  const nodes = nodesByPath(committed, (c) => c.node);
  return assembleSnapshot({ nodes, connections: [...connections.values()], domains, quotas, generation: sim?.generation }, options);
}
