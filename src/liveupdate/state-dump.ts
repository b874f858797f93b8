/**
 * Writes everything a daemon holds as a migration stream, in the order the
 * format wants (what a record depends on comes first): global data, quotas,
 * each connection with its watches and open transactions, the nodes from
 * `/` down, the domains, then xenstored-sim's own additions.
 */
import type { Connection } from '../protocol/connection.js';
import type { Daemon } from '../daemon/daemon.js';
import { DOMID_INVALID } from '../wire/vocabulary.js';
import type { Requester } from '../store/requester.js';
import type { Node, NodeContents } from '../store/node.js';
import { childPath } from '../store/path.js';
import { permChar, type Perms } from '../store/permissions.js';
import { QUOTA_NAMES } from '../store/quotas.js';
import { givenPath } from '../store/watches.js';
import type { StoreTransaction } from '../store/transaction.js';
import { NodeAccess, type NodePerm, type QuotaEntry, type StreamRecord, type StreamVersion } from '../stream/records.js';
import {
  encodeChecksum, encodeGenerations, encodeSimState, SimRecordType, type SimConnection, type SimTransaction, type SimWideDomids,
} from '../stream/sim-extension.js';
import { StreamWriter } from '../stream/stream-writer.js';

/** Where each socket lives, for a live update that keeps them open. */
export interface Descriptors {
  listening: number;
  socket(conn: Connection): number;
  guest(conn: Connection): number | null;
  domainListener(domid: number): number | null;
}

export interface DumpOptions {
  version: StreamVersion;
  bigEndian?: boolean;
  /** Only records C xenstored 4.17 understands: no quotas, domains, transactions or extensions. */
  c417?: boolean;
  descriptors?: Descriptors;
  /**
   * Include bytes Node holds for a socket — output not yet taken by the
   * kernel, input read but not delivered — (true when the sockets outlive
   * this process image only as descriptors).
   */
  includeInFlight?: boolean;
  /** Messages to add after a connection's queued output (the reply to live-update -s). */
  extraOutput?: ReadonlyMap<Connection, Buffer>;
}

export function toStreamPerms(perms: Perms): NodePerm[] {
  return perms.map((e) => ({ perm: permChar(e.bits), stale: e.stale, domid: e.domid & 0xffff }));
}

/** The entries toStreamPerms cuts to 16 bits: index and full domid. */
function wideEntries(perms: Perms): [number, number][] {
  const out: [number, number][] = [];
  perms.forEach((e, i) => {
    if (e.domid > 0xffff) out.push([i, e.domid]);
  });
  return out;
}

function quotaEntries(quotas: Record<string, number>, softMemory: number): QuotaEntry[] {
  return QUOTA_NAMES.flatMap((name) => {
    const entry = { name, value: quotas[name] ?? 0 };
    return name === 'memory' ? [entry, { name: 'soft-memory', value: softMemory }] : [entry];
  });
}

export function dumpDaemon(daemon: Daemon, options: DumpOptions): Buffer {
  const { store } = daemon;
  const c417 = options.c417 ?? false;
  const writer = new StreamWriter({ version: options.version, bigEndian: options.bigEndian ?? false }, 1 << 20);
  const fds = options.descriptors;
  writer.write({ kind: 'global', socketFd: fds?.listening ?? -1, evtchnFd: -1 });
  if (!c417) writer.write({ kind: 'globalQuota', domainQuotas: quotaEntries(store.quotas, store.softMemory), globalQuotas: [] });

  const simConnections: SimConnection[] = [];
  const simTransactions: SimTransaction[] = [];
  const wideDomids: SimWideDomids[] = [];
  const noteWide = (connId: number, txId: number, path: string, perms: Perms) => {
    const entries = wideEntries(perms);
    if (entries.length > 0) wideDomids.push({ connId, txId, path, entries });
  };
  let connId = 0;
  for (const client of store.clients.values()) {
    const conn = daemon.connections.get(client.serial);
    if (!conn) continue;
    connId++;
    writeConnection(writer, conn, connId, options);
    for (const watch of client.watches) {
      // Version 1 has no depth. C master writes WATCH_DATA_EXTENDED anyway,
      // which the specification does not allow in version 1 and which 4.17
      // skips as unknown: such a watch is not restored. Leaving it out ends
      // in the same state with a valid stream, where widening it to a plain
      // watch would send events the client never asked for.
      if (watch.depth !== undefined && options.version < 2) continue;
      writer.write({ kind: 'watch', connId, path: givenPath(watch), token: watch.token, ...(watch.depth === undefined ? {} : { depth: watch.depth }) });
    }
    simConnections.push({
      connId,
      nextTransactionId: client.nextTransactionId,
      transactionsSince: client.transactionsSince,
      ignored: client.ignored,
      guestFd: client.domain && fds ? fds.guest(conn) : null,
      listenerFd: client.domain && fds ? fds.domainListener(client.domid) : null,
    });
    if (!c417) {
      for (const tx of client.transactions.values()) {
        for (const record of transactionRecords(connId, tx)) writer.write(record);
        simTransactions.push(simTransaction(connId, tx));
        for (const [path, t] of tx.touched) if (t.record) noteWide(connId, tx.id, path, t.record.perms);
      }
    }
  }

  const gens: number[] = [];
  const writeNode = (path: string, record: NodeContents) => {
    writer.write({ kind: 'node', connId: 0, txId: 0, path, value: Buffer.from(record.value, 'latin1'), access: 0, perms: toStreamPerms(record.perms) });
    noteWide(0, 0, path, record.perms);
    gens.push(record.gen);
  };
  if (!store.compat.specialPathsAreNodes) {
    for (const [name, perms] of store.specialPerms) writer.write({ kind: 'node', connId: 0, txId: 0, path: name, value: Buffer.alloc(0), access: 0, perms: toStreamPerms(perms) });
  }
  const walk = (path: string, node: Node): void => {
    writeNode(path, store.withCurrentPerms(node));
    if (!node.children) return;
    for (const [name, child] of node.children.children()) walk(childPath(path, name), child!);
  };
  walk('/', store.root);
  for (const [name, node] of store.specialNodes) writeNode(name, store.withCurrentPerms(node));

  if (!c417) {
    for (const domain of store.domains.all()) {
      writer.write({ kind: 'domain', domid: domain.domid, features: options.version >= 2 ? domain.features : 0, quotas: quotaEntries(domain.quotas, store.softMemory) });
    }
    writer.write({ kind: 'unknown', type: SimRecordType.NODE_GENERATIONS, body: encodeGenerations(gens) });
    writer.write({
      kind: 'unknown',
      type: SimRecordType.STATE,
      body: encodeSimState({
        format: 1,
        generation: store.generation,
        softMemory: store.softMemory,
        hypervisor: store.hypervisor.describe(),
        domains: [...store.domains.all()].map((d) => ({
          domid: d.domid, generation: d.generation, introduced: d.introduced, shutdownReported: d.shutdownReported,
          nodeCount: d.nodeCount, memory: d.memory, port: d.port, uniqueId: d.uniqueId.toString(), features: d.features, quotas: { ...d.quotas },
        })),
        specialPerms: [...store.specialPerms].map(([name, perms]) => [name, [...perms]]),
        connections: simConnections,
        transactions: simTransactions,
        wideDomids,
      }),
    });
    writer.write({ kind: 'unknown', type: SimRecordType.CHECKSUM, body: encodeChecksum(writer.written()) });
  }
  return writer.finish();
}

function writeConnection(writer: StreamWriter, conn: Connection, connId: number, options: DumpOptions): void {
  const client: Requester = conn.client;
  const { partial, messages } = conn.unsentOutput(options.includeInFlight ?? true);
  const common = {
    kind: 'connection' as const,
    connId,
    inData: conn.unprocessedInput(options.includeInFlight ?? true),
    outRespLen: partial.length,
    outData: Buffer.concat([partial, ...messages, ...(options.extraOutput?.has(conn) ? [options.extraOutput.get(conn)!] : [])]),
  };
  if (client.domain) {
    writer.write({
      ...common,
      connType: 'ring',
      domid: client.domid,
      tdomid: client.target ?? DOMID_INVALID,
      evtchn: client.domain.port,
      ...(options.c417 ? {} : { uniqueId: client.domain.uniqueId }),
    });
  } else {
    writer.write({ ...common, connType: 'socket', socketFd: options.descriptors?.socket(conn) ?? -1 });
  }
}

/** TRANSACTION_DATA, then one NODE_DATA per node the transaction holds a copy of or deleted. */
/** TRANSACTION_DATA, then one NODE_DATA per node the transaction holds a copy of or deleted. */
export function transactionRecords(connId: number, tx: StoreTransaction): StreamRecord[] {
  const records: StreamRecord[] = [{ kind: 'transaction', connId, txId: tx.id }];
  for (const [path, t] of tx.touched) {
    if (!t.record && !t.modified) continue;
    records.push({
      kind: 'node', connId, txId: tx.id, path,
      value: Buffer.from(t.record?.value ?? '', 'latin1'),
      access: t.record ? (t.modified ? NodeAccess.WRITTEN : 0) | (t.checkGen ? NodeAccess.READ : 0) : NodeAccess.DELETED,
      perms: t.record ? toStreamPerms(t.record.perms) : [],
    });
  }
  return records;
}

/** What the format cannot say about a transaction, for xenstored-sim's own record. */
function simTransaction(connId: number, tx: StoreTransaction): SimTransaction {
  const touched = [...tx.touched].map(([path, t]) => ({
    path, checkGen: t.checkGen, gen: t.gen, oldPerms: t.oldPerms ? [...t.oldPerms] : null, modified: t.modified,
    fire: t.fire ?? null, recordGen: t.record?.gen ?? null, children: t.record?.children ? [...t.record.children.names()] : null,
  }));
  return {
    connId, txId: tx.id, startGen: tx.startGen, failed: tx.failed, createdNode: tx.createdNode,
    nodeCountDelta: [...tx.nodeCountDelta], touched,
  };
}
