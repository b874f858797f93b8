/**
 * Rebuilds a daemon from a migration stream. Each record is decoded,
 * checked against those before it and applied to a fresh daemon in one
 * pass (records die young, so a big stream costs little garbage
 * collection). Sockets are adopted only at the end, so a bad stream never
 * leaves a half-restored daemon behind: the caller either gets a complete
 * daemon or a StreamError.
 */
import type net from 'node:net';
import { Daemon } from '../daemon/daemon.js';
import type { DaemonOptions } from '../daemon/options.js';
import type { Connection } from '../protocol/connection.js';
import { HEADER_SIZE, DOMID_INVALID } from '../wire/vocabulary.js';
import { ChildList } from '../store/child-list.js';
import { Node, type NodeContents } from '../store/node.js';
import { baseName, canonicalize, isSpecialPath, parentPath } from '../store/path.js';
import { permBits, type Perms } from '../store/permissions.js';
import { isQuotaName } from '../store/quotas.js';
import type { Store } from '../store/store.js';
import { NO_GENERATION, StoreTransaction } from '../store/transaction.js';
import type { Watch } from '../store/watches.js';
import {
  NodeAccess, type ConnectionRecord, type DecodedRecord, type GlobalRecord, type NodePerm, type NodeRecord as StreamNode, type QuotaEntry,
} from '../stream/records.js';
import {
  checksumMatches, decodeGenerations, decodeSimState, SimRecordType, type SimConnection, type SimState, type SimWideDomids,
} from '../stream/sim-extension.js';
import { recordSite } from '../stream/body-reader.js';
import { StreamChecker } from '../stream/stream-check.js';
import { StreamError } from '../stream/stream-error.js';
import { iterateStream, readHeader } from '../stream/stream-reader.js';

/** Where the restored daemon finds the sockets the stream refers to. */
export interface SocketSource {
  listening(record: GlobalRecord): net.Server | undefined;
  socket(record: ConnectionRecord, connIndex: number): net.Socket | undefined;
  guest(sim: SimConnection, connIndex: number): net.Socket | undefined;
  domainListener(domid: number, sim: SimConnection | undefined): net.Server | undefined;
}

export const NO_SOCKETS: SocketSource = {
  listening: () => undefined,
  socket: () => undefined,
  guest: () => undefined,
  domainListener: () => undefined,
};

export interface Restored {
  daemon: Daemon;
  /** Requests received before the dump; feed them in once the daemon runs. */
  replay(): void;
}

/** A stream's permission entries as the store's shared list. */
export function fromStreamPerms(store: Store, perms: NodePerm[]): Perms {
  return store.perms.intern(perms.map((p) => ({ bits: permBits(p.perm) ?? 0, domid: p.domid, stale: p.stale })));
}

function inconsistent(at: DecodedRecord, reason: string): StreamError {
  return new StreamError('XS_STREAM_INCONSISTENT', { offset: at.offset, recordIndex: at.index, recordType: at.record.kind }, reason);
}

/** Splits bytes that hold whole messages back to back (a dump's queued output). */
function splitMessages(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + HEADER_SIZE <= bytes.length; ) {
    const end = at + HEADER_SIZE + bytes.readUInt32LE(at + 12);
    out.push(bytes.subarray(at, Math.min(end, bytes.length)));
    at = end;
  }
  return out;
}

/**
 * Rebuilds a daemon from `stream`. Sockets are taken from `sockets` only
 * once everything else has been restored, so a failure never leaves a
 * descriptor half adopted (a live update can then fall back cleanly).
 */
export function restoreDaemon(options: DaemonOptions, stream: Buffer, sockets: SocketSource, log?: (line: string) => void): Restored {
  const { version } = readHeader(stream);
  const checker = new StreamChecker();
  const daemon = new Daemon(options, log, false);
  const { store } = daemon;
  const conns = new Map<number, Connection>();
  const committed: Node[] = [];
  const pendingInput: [Connection, Buffer][] = [];
  let sim: SimState | undefined;
  let generations: DecodedRecord | undefined;
  let global: GlobalRecord | undefined;
  const socketConns: [Connection, ConnectionRecord, number][] = [];
  const parents = new ParentFinder(store);

  for (const at of iterateStream(stream)) {
    const problem = checker.check(at);
    if (problem) throw problem;
    const r = at.record;
    switch (r.kind) {
      case 'global':
        global = r;
        break;
      case 'globalQuota':
        applyQuotas(store.quotas, [...r.domainQuotas, ...r.globalQuotas], (v) => (store.softMemory = v));
        break;
      case 'connection': {
        const conn = restoreConnection(daemon, r);
        socketConns.push([conn, r, conns.size]);
        conns.set(r.connId, conn);
        conn.restoreOutput(r.outData.subarray(0, r.outRespLen), splitMessages(r.outData.subarray(r.outRespLen)));
        if (r.inData.length > 0) pendingInput.push([conn, r.inData]);
        break;
      }
      case 'watch': {
        const conn = conns.get(r.connId)!;
        const relative = r.path.charCodeAt(0) !== 0x2f && !isSpecialPath(r.path);
        const watch: Watch = {
          path: canonicalize(r.path, conn.client.home),
          token: r.token,
          relativeTo: relative ? conn.client.home : undefined,
          depth: typeof r.depth === 'number' ? r.depth : undefined,
        };
        store.watch(conn.client, watch);
        break;
      }
      case 'transaction': {
        const client = conns.get(r.connId)!.client;
        client.transactions.set(r.txId, new StoreTransaction(r.txId, 0));
        break;
      }
      case 'node':
        if (r.connId === 0) restoreNode(daemon, parents, at, r, committed);
        else restorePendingNode(store, conns.get(r.connId)!.client.transactions.get(r.txId)!, r);
        break;
      case 'domain': {
        const domain = store.domainObject(r.domid);
        if (version >= 2) domain.features = r.features;
        applyQuotas(domain.quotas, r.quotas, () => {});
        break;
      }
      case 'unknown':
        if (r.type === SimRecordType.STATE) sim = decodeSimState(r.body);
        else if (r.type === SimRecordType.NODE_GENERATIONS) generations = at;
        else if (r.type === SimRecordType.CHECKSUM) {
          if (!checksumMatches(r.body, stream.subarray(0, at.offset))) {
            throw new StreamError('XS_STREAM_CHECKSUM', recordSite(at.offset, at.index, r.type),
              'the checksum does not match the bytes before it: the stream was damaged');
          }
        }
        else log?.(`live update: skipping unknown record type 0x${r.type.toString(16)}`);
        break;
    }
  }
  if (!committed.includes(store.root)) {
    throw new StreamError('XS_STREAM_INCONSISTENT', { offset: stream.length }, 'the stream holds no root node');
  }
  if (generations) {
    const gens = decodeGenerations((generations.record as { body: Buffer }).body, committed.length);
    committed.forEach((node, i) => (node.gen = gens[i]!));
  }
  if (sim) applySimState(daemon, sim, conns);
  else for (const [, conn] of conns) doomTransactions(conn);
  // Memory is not in the stream: it follows from the nodes, as C recounts it.
  store.recountNodeMemory();
  attachSockets(daemon, sockets, global, socketConns, sim);
  return { daemon, replay: () => pendingInput.forEach(([conn, bytes]) => daemon.receive(conn, bytes)) };
}

/** The last step: the listening socket, every client's socket, the guest sockets and domain listeners. */
function attachSockets(
  daemon: Daemon, sockets: SocketSource, global: GlobalRecord | undefined,
  conns: [Connection, ConnectionRecord, number][], sim: SimState | undefined,
): void {
  const server = global && sockets.listening(global);
  if (server) daemon.adoptServer(server);
  const simById = new Map(sim?.connections.map((s) => [s.connId, s]));
  for (const [conn, record, index] of conns) {
    const saved = simById.get(record.connId);
    if (conn.client.domain) {
      daemon.openDomainSocket(conn.client, sockets.domainListener(conn.client.domid, saved));
      const guest = saved && sockets.guest(saved, index);
      if (guest) daemon.attachGuest(conn, guest);
      continue;
    }
    const socket = sockets.socket(record, index);
    // A socket client whose socket did not come along has nobody to answer.
    if (socket) daemon.attachSocket(conn, socket);
    else daemon.dropConnection(conn);
  }
}

function applyQuotas(target: Record<string, number>, entries: QuotaEntry[], softMemory: (v: number) => void): void {
  for (const { name, value } of entries) {
    if (name === 'soft-memory') softMemory(value);
    else if (isQuotaName(name)) target[name] = value;
  }
}

function restoreConnection(daemon: Daemon, r: ConnectionRecord): Connection {
  const { store } = daemon;
  if (r.connType === 'socket') return daemon.connectionFor(store.addSocketClient());
  const domain = store.domainObject(r.domid);
  domain.introduced = true;
  domain.port = r.evtchn;
  if (r.uniqueId !== undefined) domain.uniqueId = r.uniqueId;
  else domain.uniqueId = store.hypervisor.info(r.domid)?.uniqueId ?? 0n;
  const client = store.addDomainClient(domain);
  if (r.tdomid !== DOMID_INVALID) client.target = r.tdomid;
  return daemon.connectionFor(client);
}

/**
 * Finds a restored node's parent. Streams list nodes parent first, depth
 * first, so the parent is almost always on the branch just restored: a
 * stack of that branch answers without walking the path from the root.
 */
class ParentFinder {
  private readonly branch: { path: string; node: Node }[] = [];

  constructor(private readonly store: Daemon['store']) {}

  find(path: string): Node | undefined {
    const parent = parentPath(path);
    const { branch } = this;
    while (branch.length > 0 && branch[branch.length - 1]!.path !== parent) branch.pop();
    return branch.length > 0 ? branch[branch.length - 1]!.node : this.store.lookup(parent);
  }

  restored(path: string, node: Node): void {
    this.branch.push({ path, node });
  }
}

function restoreNode(daemon: Daemon, parents: ParentFinder, at: DecodedRecord, r: StreamNode, committed: Node[]): void {
  const { store } = daemon;
  const perms = fromStreamPerms(store, r.perms);
  const value = r.value.toString('latin1');
  if (isSpecialPath(r.path)) {
    if (!store.compat.specialPathsAreNodes) {
      store.specialPerms.set(r.path, perms);
      return;
    }
    const special = new Node(value, perms, store.nextGeneration());
    store.specialNodes.set(r.path, special);
    committed.push(special); // a dump gives special nodes a generation too
    return;
  }
  let node: Node;
  if (r.path === '/') {
    node = store.root;
    node.value = value;
    node.perms = perms;
    node.gen = store.nextGeneration();
  } else {
    const parent = parents.find(r.path);
    if (!parent) throw inconsistent(at, `parent of ${r.path} is not known`);
    node = new Node(value, perms, store.nextGeneration());
    parent.children = (parent.children ?? new ChildList()).writable();
    parent.children.add(baseName(r.path), node);
  }
  store.countNode(perms, +1, undefined);
  parents.restored(r.path, node);
  committed.push(node);
}

export function restorePendingNode(store: Store, tx: StoreTransaction, r: StreamNode): void {
  const record: NodeContents | null = r.access === NodeAccess.DELETED && r.perms.length === 0
    ? null
    : { value: r.value.toString('latin1'), perms: fromStreamPerms(store, r.perms), gen: 0, children: null };
  tx.touched.set(r.path, {
    checkGen: (r.access & NodeAccess.READ) !== 0,
    gen: NO_GENERATION,
    oldPerms: record?.perms ?? null,
    modified: (r.access & NodeAccess.WRITTEN) !== 0 || record === null,
    record,
    fire: undefined,
  });
}

/**
 * Transactions from a stream without xenstored-sim's bookkeeping (another
 * implementation, or a per-domain migration) cannot be checked for
 * conflicts: as the stream's design says, they fail with EAGAIN at commit.
 */
function doomTransactions(conn: Connection): void {
  for (const tx of conn.client.transactions.values()) tx.historyUnknown = true;
}

/** Puts back the domids NODE_DATA cut to 16 bits. */
function restoreWideDomids(store: Store, wide: SimWideDomids[], byId: Map<number, Connection>): void {
  const widened = (perms: Perms, entries: [number, number][]) => {
    const full = perms.map((e) => ({ ...e }));
    for (const [i, domid] of entries) if (full[i]) full[i]!.domid = domid;
    return store.perms.intern(full);
  };
  for (const w of wide) {
    if (w.connId === 0) {
      const node = store.lookup(w.path);
      if (node) node.perms = widened(node.perms, w.entries);
      continue;
    }
    const touched = byId.get(w.connId)?.client.transactions.get(w.txId)?.touched.get(w.path);
    if (touched?.record) touched.record = { ...touched.record, perms: widened(touched.record.perms, w.entries) };
  }
}

function applySimState(daemon: Daemon, sim: SimState, byId: Map<number, Connection>): void {
  const { store } = daemon;
  store.generation = sim.generation;
  store.softMemory = sim.softMemory;
  store.hypervisor.load(sim.hypervisor);
  for (const d of sim.domains) {
    const domain = store.domainObject(d.domid);
    Object.assign(domain, {
      introduced: d.introduced, shutdownReported: d.shutdownReported, nodeCount: d.nodeCount, memory: d.memory,
      port: d.port, uniqueId: BigInt(d.uniqueId), features: d.features,
    });
    Object.assign(domain.quotas, d.quotas);
    domain.generation = d.generation;
  }
  for (const [name, perms] of sim.specialPerms) store.specialPerms.set(name, store.perms.intern(perms));
  for (const s of sim.connections) {
    const client = byId.get(s.connId)?.client;
    if (!client) continue;
    client.nextTransactionId = s.nextTransactionId;
    client.transactionsSince = s.transactionsSince;
    client.ignored = s.ignored;
  }
  for (const t of sim.transactions) {
    const client = byId.get(t.connId)!.client;
    const old = client.transactions.get(t.txId)!;
    const tx = new StoreTransaction(t.txId, t.startGen);
    tx.failed = t.failed;
    tx.createdNode = t.createdNode;
    for (const [domid, delta] of t.nodeCountDelta) tx.nodeCountDelta.set(domid, delta);
    for (const n of t.touched) {
      const saved = old.touched.get(n.path)?.record ?? null;
      const record: NodeContents | null = n.recordGen === null || !saved ? null : {
        value: saved.value, perms: saved.perms, gen: n.recordGen,
        children: n.children ? new ChildList(new Map(n.children.map((c) => [c, undefined]))) : null,
      };
      tx.touched.set(n.path, {
        checkGen: n.checkGen, gen: n.gen, oldPerms: n.oldPerms ? store.perms.intern(n.oldPerms) : null,
        modified: n.modified, record, fire: n.fire ?? undefined,
      });
    }
    client.transactions.set(t.txId, tx);
  }
  restoreWideDomids(store, sim.wideDomids ?? [], byId);
}
