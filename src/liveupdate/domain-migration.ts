/**
 * Per-domain migration, the stream's first purpose: export one guest's
 * state (its ring connection, watches, open transactions, its home subtree
 * and the nodes it owns elsewhere, its quotas) from one daemon and import
 * it into another. Imported transactions exist but fail with EAGAIN at
 * commit, as the stream's design intends: the receiver cannot know what
 * they conflicted with. The guest client then reconnects to the new
 * daemon's domain socket.
 */
import type { Daemon } from '../daemon/daemon.js';
import { DOMID_INVALID, INTRODUCE_DOMAIN } from '../wire/vocabulary.js';
import { ChildList } from '../store/child-list.js';
import type { Requester } from '../store/requester.js';
import { clientOf } from '../store/domain-ops.js';
import { fireSpecialEvent } from '../store/events.js';
import { Node } from '../store/node.js';
import { baseName, canonicalize, childPath, isSpecialPath, parentPath } from '../store/path.js';
import type { Perms } from '../store/permissions.js';
import { isQuotaName } from '../store/quotas.js';
import { givenPath } from '../store/watches.js';
import { StoreTransaction } from '../store/transaction.js';
import { type DecodedRecord, type NodeRecord as StreamNode, type RingConnectionRecord, type StreamRecord } from '../stream/records.js';
import { toStreamPerms, transactionRecords } from './state-dump.js';
import { fromStreamPerms, restorePendingNode } from './state-restore.js';
import { checkStream } from '../stream/stream-check.js';
import { StreamError } from '../stream/stream-error.js';
import { decodeStream } from '../stream/stream-reader.js';
import { encodeStream } from '../stream/stream-writer.js';

export class MigrationError extends Error {}

/** The stream for one introduced domain (version 2, little-endian). */
export function exportDomain(daemon: Daemon, domid: number): Buffer {
  const { store } = daemon;
  const domain = store.domains.introduced(domid);
  const client = domain && clientOf(store, domain);
  if (!domain || !client) throw new MigrationError(`domain ${domid} is not introduced`);
  const records: StreamRecord[] = [{
    kind: 'connection', connType: 'ring', connId: 1, domid, tdomid: client.target ?? DOMID_INVALID, evtchn: domain.port,
    uniqueId: domain.uniqueId, inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0),
  }];
  for (const w of client.watches) {
    records.push({ kind: 'watch', connId: 1, path: givenPath(w), token: w.token, ...(w.depth === undefined ? {} : { depth: w.depth }) });
  }
  for (const tx of client.transactions.values()) records.push(...transactionRecords(1, tx));
  const home = client.home;
  const walk = (path: string, node: Node, inHome: boolean): void => {
    const mine = inHome || path === home || node.perms[0]!.domid === domid;
    if (mine) {
      const r = store.withCurrentPerms(node);
      records.push({ kind: 'node', connId: 0, txId: 0, path, value: Buffer.from(r.value, 'latin1'), access: 0, perms: toStreamPerms(r.perms) });
    }
    if (!node.children) return;
    for (const [name, child] of node.children.children()) walk(childPath(path, name), child!, mine && (inHome || path === home));
  };
  walk('/', store.root, false);
  records.push({ kind: 'domain', domid, features: domain.features, quotas: Object.entries(domain.quotas).map(([name, value]) => ({ name, value })) });
  return encodeStream({ version: 2, bigEndian: false }, records);
}

/**
 * Imports a domain exported by `exportDomain` (or any stream holding one
 * ring connection). Everything is checked before anything changes.
 */
export function importDomain(daemon: Daemon, stream: Buffer): number {
  const decoded = decodeStream(stream);
  const rings = decoded.records.filter((d) => d.record.kind === 'connection');
  if (rings.length !== 1 || (rings[0]!.record as { connType: string }).connType !== 'ring') {
    throw new MigrationError('a domain stream holds exactly one ring connection');
  }
  const conn = rings[0]!.record as RingConnectionRecord;
  const { store } = daemon;
  if (store.domains.introduced(conn.domid)) throw new MigrationError(`domain ${conn.domid} is already introduced here`);
  if (!store.hypervisor.exists(conn.domid)) throw new MigrationError(`domain ${conn.domid} does not exist here`);
  const nodes = decoded.records.filter((d): d is DecodedRecord & { record: StreamNode } => d.record.kind === 'node');
  const ancestors = new Set<string>(['/']);
  for (const { record } of nodes) {
    if (record.connId !== 0 || isSpecialPath(record.path)) continue;
    for (let p = parentPath(record.path); p !== '/'; p = parentPath(p)) ancestors.add(p);
  }
  const problem = checkStream(decoded.records, { preExisting: ancestors });
  if (problem) throw problem;
  for (const d of nodes) {
    if (d.record.connId === 0 && (isSpecialPath(d.record.path) || d.record.path === '/')) {
      throw new StreamError('XS_STREAM_INCONSISTENT', { offset: d.offset, recordIndex: d.index, recordType: 'NODE_DATA' },
        `${d.record.path} cannot be imported with a domain`);
    }
  }
  apply(daemon, decoded.records, conn);
  return conn.domid;
}

function apply(daemon: Daemon, records: DecodedRecord[], ring: RingConnectionRecord): void {
  const { store } = daemon;
  const domain = store.domainObject(ring.domid);
  domain.introduced = true;
  domain.port = ring.evtchn;
  domain.uniqueId = store.hypervisor.info(ring.domid)!.uniqueId;
  const client: Requester = store.addDomainClient(domain);
  if (ring.tdomid !== DOMID_INVALID && store.domains.introduced(ring.tdomid)) client.target = ring.tdomid;
  daemon.connectionReset(client);
  for (const { record: r } of records) {
    if (r.kind === 'watch') {
      const relative = r.path.charCodeAt(0) !== 0x2f && !isSpecialPath(r.path);
      store.watch(client, {
        path: canonicalize(r.path, client.home), token: r.token,
        relativeTo: relative ? client.home : undefined, depth: typeof r.depth === 'number' ? r.depth : undefined,
      });
    } else if (r.kind === 'transaction') {
      const tx = new StoreTransaction(r.txId, store.nextGeneration());
      tx.historyUnknown = true;
      client.transactions.set(r.txId, tx);
      client.nextTransactionId = Math.max(client.nextTransactionId, r.txId + 1);
    } else if (r.kind === 'node' && r.connId !== 0) {
      restorePendingNode(store, client.transactions.get(r.txId)!, r);
    } else if (r.kind === 'node') {
      putNode(daemon, r.path, r.value.toString('latin1'), fromStreamPerms(store, r.perms));
    } else if (r.kind === 'domain') {
      domain.features = r.features;
      for (const q of r.quotas) if (isQuotaName(q.name)) domain.quotas[q.name] = q.value;
    }
  }
  store.recountNodeMemory();
  fireSpecialEvent(store, INTRODUCE_DOMAIN, ring.domid, true);
  daemon.flush();
}

/** Writes a node as dom0 would, creating missing ancestors with their parent's permissions. */
function putNode(daemon: Daemon, path: string, value: string, perms: Perms): void {
  const { store } = daemon;
  let parent = store.root;
  let at = '/';
  for (const name of path.slice(1).split('/').slice(0, -1)) {
    at = childPath(at, name);
    let next = parent.children?.get(name);
    if (!next) {
      next = new Node('', parent.perms, store.nextGeneration());
      parent.children = (parent.children ?? new ChildList()).writable();
      parent.children.add(name, next);
      store.countNode(next.perms, +1, undefined);
    }
    parent = next;
  }
  const existing = parent.children?.get(baseName(path));
  if (existing) {
    store.changeOwner(existing.perms, perms, undefined);
    existing.value = value;
    existing.perms = perms;
    existing.gen = store.nextGeneration();
  } else {
    parent.children = (parent.children ?? new ChildList()).writable();
    parent.children.add(baseName(path), new Node(value, perms, store.nextGeneration()));
    store.countNode(perms, +1, undefined);
  }
}
