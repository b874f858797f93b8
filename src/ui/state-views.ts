/**
 * What the sandbox page shows, as plain JSON-ready values read from the
 * running daemon. This is the only UI module that knows the store's
 * classes, so a change of the store's saving boundary touches one file.
 */
import { createHash } from 'node:crypto';
import type { Daemon } from '../daemon/daemon.js';
import type { Node } from '../store/node.js';
import { childPath } from '../store/path.js';
import { formatPerms } from '../store/permissions.js';
import { quotaFor } from '../store/quota-gate.js';
import type { QuotaName } from '../store/quotas.js';
import type { Store } from '../store/store.js';

/** Bytes of a value sent to the page; longer ones are cut and say so. */
const VALUE_SHOWN = 4096;

export interface NodeSummary {
  name: string;
  path: string;
  /** The value as text (UTF-8 where it decodes, else one character per byte). */
  text: string;
  /** The value in hex, when it is not plain printable text. */
  hex: string | undefined;
  size: number;
  perms: string[];
  gen: number;
  children: number;
}

export interface DirectoryPage {
  path: string;
  /** Children in creation order, `offset` onwards, at most `limit`. */
  children: NodeSummary[];
  offset: number;
  total: number;
}

function isPrintable(bytes: Buffer): boolean {
  for (const b of bytes) if ((b < 0x20 && b !== 0x0a && b !== 0x09) || b === 0x7f) return false;
  return true;
}

function summary(store: Store, name: string, path: string, node: Node): NodeSummary {
  const bytes = Buffer.from(node.value.slice(0, VALUE_SHOWN), 'latin1');
  const utf8 = bytes.toString('utf8');
  const text = utf8.includes('\ufffd') ? bytes.toString('latin1') : utf8;
  return {
    name,
    path,
    text,
    hex: isPrintable(bytes) ? undefined : bytes.toString('hex'),
    size: node.value.length,
    perms: formatPerms(store.withCurrentPerms(node).perms),
    gen: node.gen,
    children: node.children?.size ?? 0,
  };
}

/** One node, or undefined when there is none. */
export function nodeAt(store: Store, path: string): NodeSummary | undefined {
  const node = store.lookup(path);
  return node && summary(store, path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1), path, node);
}

/** One page of a directory, like DIRECTORY_PART: large directories come in parts. */
export function directoryPage(store: Store, path: string, offset: number, limit: number): DirectoryPage | undefined {
  const node = store.lookup(path);
  if (!node) return undefined;
  const children: NodeSummary[] = [];
  let index = 0;
  for (const [name, child] of node.children?.children() ?? []) {
    if (index++ < offset || !child) continue;
    if (children.length === limit) break;
    children.push(summary(store, name, childPath(path, name), child));
  }
  return { path, children, offset, total: node.children?.size ?? 0 };
}

/** Nodes a search visits before it lets the daemon serve its clients again. */
const SEARCH_SLICE = 5000;

/**
 * Paths containing `query`, in tree order, at most `limit` of them. A big
 * tree is walked in slices, so clients are served meanwhile (a node removed
 * during the walk may still be listed).
 */
export async function searchPaths(store: Store, query: string, limit: number): Promise<{ paths: string[]; complete: boolean }> {
  const paths: string[] = [];
  const stack: [string, Node][] = [['/', store.root]];
  for (let visited = 1; stack.length > 0; visited++) {
    if (visited % SEARCH_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    const [path, node] = stack.pop()!;
    if (path.includes(query)) {
      if (paths.length === limit) return { paths, complete: false };
      paths.push(path);
    }
    const below = [...(node.children?.children() ?? [])];
    for (let i = below.length - 1; i >= 0; i--) {
      const [name, child] = below[i]!;
      if (child) stack.push([childPath(path, name), child]);
    }
  }
  return { paths, complete: true };
}

export interface TransactionView {
  id: number;
  read: string[];
  written: string[];
}

export interface ConnectionView {
  id: number;
  domid: number;
  kind: 'socket' | 'guest';
  /** A guest domain's ring has a client attached; sockets always do. */
  attached: boolean;
  privileged: boolean;
  watches: { path: string; token: string; depth: number | undefined }[];
  transactions: TransactionView[];
  /** Usage against the limit in force, for the quotas a connection can use up. */
  quotas: { name: QuotaName; used: number; limit: number }[];
}

const SHOWN_QUOTAS: QuotaName[] = ['nodes', 'watches', 'transactions'];

export function connections(daemon: Daemon): ConnectionView[] {
  const store = daemon.store;
  return [...daemon.connections.values()].map(({ client, transport }) => {
    const used: Partial<Record<QuotaName, number>> = {
      nodes: client.domain?.nodeCount ?? store.domains.get(client.domid)?.nodeCount ?? 0,
      watches: client.watches.length,
      transactions: client.transactions.size,
    };
    return {
      id: client.serial,
      domid: client.domid,
      kind: client.domain ? 'guest' : 'socket',
      attached: transport !== undefined,
      privileged: client.privileged,
      watches: client.watches.map((w) => ({ path: w.path, token: w.token, depth: w.depth })),
      transactions: [...client.transactions.values()].map((tx) => {
        const touched = [...tx.touched];
        return {
          id: tx.id,
          read: touched.filter(([, t]) => !t.modified).map(([p]) => p),
          written: touched.filter(([, t]) => t.modified).map(([p]) => p),
        };
      }),
      quotas: SHOWN_QUOTAS.map((name) => ({
        name, used: used[name] ?? 0, limit: quotaFor(store, client, name),
      })),
    };
  });
}

export interface DomainView {
  domid: number;
  /** The hypervisor's view; undefined once destroyed. */
  state: string | undefined;
  introduced: boolean;
  nodes: number;
}

/** The domains xenstored knows and those the hypervisor was told about. */
export function domains(store: Store): DomainView[] {
  const ids = new Set<number>([...store.domains.all()].map((d) => d.domid));
  for (const [domid] of store.hypervisor.describe().domains) ids.add(domid);
  return [...ids].sort((a, b) => a - b).map((domid) => {
    const d = store.domains.get(domid);
    return { domid, state: store.hypervisor.info(domid)?.state, introduced: d?.introduced ?? false, nodes: d?.nodeCount ?? 0 };
  });
}

/**
 * A fingerprint of what a live update must keep: every node (path, value,
 * permissions), the watches and open transactions of every connection.
 */
export function stateDigest(daemon: Daemon): { nodes: number; transactions: number; digest: string } {
  const hash = createHash('sha256');
  let nodes = 0;
  const stack: [string, Node][] = [['/', daemon.store.root]];
  while (stack.length > 0) {
    const [path, node] = stack.pop()!;
    nodes++;
    hash.update(`${path}\0${node.value}\0${formatPerms(node.perms).join(',')}\n`, 'latin1');
    for (const [name, child] of node.children?.children() ?? []) if (child) stack.push([childPath(path, name), child]);
  }
  // Connection ids are renumbered by a restore, and idle ones carry no state.
  const kept = connections(daemon).filter((c) => c.watches.length > 0 || c.transactions.length > 0);
  for (const line of kept.map((c) => JSON.stringify([c.domid, c.watches, c.transactions])).sort()) hash.update(line);
  const transactions = kept.reduce((n, c) => n + c.transactions.length, 0);
  return { nodes, transactions, digest: hash.digest('hex').slice(0, 16) };
}
