/**
 * Writes everything a daemon holds as a migration stream, in the order the
 * format wants (what a record depends on comes first): global data, quotas,
 * each connection with its watches and open transactions, the nodes from
 * `/` down, the domains, then xenstored-sim's own additions.
 */
import type net from 'node:net';
import type { Connection } from '../protocol/connection.js';
import type { LiveUpdateHost } from './host.js';
import { DOMID_INVALID } from '../wire/vocabulary.js';
import { saveRequester, type SavedRequester } from '../store/requester.js';
import { saveDomain } from '../store/domains.js';
import { QUOTA_NAMES } from '../store/quotas.js';
import { forEachSavedNode } from '../store/saved-store.js';
import { type QuotaEntry, type StreamVersion } from '../stream/records.js';
import { encodeChecksum, encodeGenerations, encodeSimState, SimRecordType, type SimConnection, type SimState } from '../stream/sim-extension.js';
import type { PermEntry } from '../store/permissions.js';
import { StreamWriter } from '../stream/stream-writer.js';
import { committedNodeRecord, permsToRecord, transactionRecords, watchRecord, wideEntries } from './record-values.js';

/** Where each socket lives, for a live update that keeps them open. */
export interface Descriptors {
  listening: number;
  socket(conn: Connection): number;
  guest(conn: Connection): number | null;
  domainListener(domid: number): number | null;
  /** A guest client waiting for its domain's ring. */
  parked(socket: net.Socket): number | null;
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

/** The quota settings as the stream carries them: soft-memory right after memory. */
export function quotaEntries(quotas: Record<string, number>, softMemory: number): QuotaEntry[] {
  return QUOTA_NAMES.flatMap((name) => {
    const entry = { name, value: quotas[name] ?? 0 };
    return name === 'memory' ? [entry, { name: 'soft-memory', value: softMemory }] : [entry];
  });
}

export function dumpDaemon(daemon: LiveUpdateHost, options: DumpOptions): Buffer {
  const { store } = daemon;
  const c417 = options.c417 ?? false;
  const writer = new StreamWriter({ version: options.version, bigEndian: options.bigEndian ?? false }, 1 << 20);
  const fds = options.descriptors;
  writer.write({ kind: 'global', socketFd: fds?.listening ?? -1, evtchnFd: -1 });
  if (!c417) writer.write({ kind: 'globalQuota', domainQuotas: quotaEntries(store.quotas, store.softMemory), globalQuotas: [] });

  const simConnections: SimConnection[] = [];
  let connId = 0;
  for (const client of store.clients.values()) {
    const conn = daemon.connections.get(client.serial);
    if (!conn) continue;
    connId++;
    const saved = saveRequester(client);
    // Version 1 has no depth. C master writes WATCH_DATA_EXTENDED anyway,
    // which the specification does not allow in version 1 and which 4.17
    // skips as unknown: such a watch is not restored. Leaving it out ends in
    // the same state with a valid stream.
    if (options.version < 2) saved.watches = saved.watches.filter((w) => w.depth === undefined);
    writeConnection(writer, conn, saved, connId, options);
    for (const watch of saved.watches) writer.write(watchRecord(connId, watch));
    if (!c417) for (const tx of saved.transactions) for (const record of transactionRecords(connId, tx)) writer.write(record);
    simConnections.push({
      connId,
      client: saved,
      guestFd: client.domain && fds ? fds.guest(conn) : null,
      listenerFd: client.domain && fds ? fds.domainListener(client.domid) : null,
    });
  }

  const gens: number[] = [];
  const wideDomids: SimState['wideDomids'] = [];
  const noteWide = (path: string, perms: readonly PermEntry[]): void => {
    const entries = wideEntries(perms);
    if (entries.length > 0) wideDomids.push({ path, entries });
  };
  if (!store.compat.specialPathsAreNodes) {
    for (const [name, perms] of store.specialPerms) {
      writer.write({ kind: 'node', connId: 0, txId: 0, path: name, value: Buffer.alloc(0), access: 0, perms: permsToRecord(perms) });
      noteWide(name, perms);
    }
  }
  forEachSavedNode(store, (node) => {
    noteWide(node.path, node.perms);
    writer.write(committedNodeRecord(node));
    gens.push(node.gen);
  });

  if (!c417) {
    const domains = [...store.domains.all()].map(saveDomain);
    for (const domain of domains) {
      writer.write({ kind: 'domain', domid: domain.domid, features: options.version >= 2 ? domain.features : 0, quotas: quotaEntries(domain.quotas, store.softMemory) });
    }
    writer.write({ kind: 'unknown', type: SimRecordType.NODE_GENERATIONS, body: encodeGenerations(gens) });
    writer.write({
      kind: 'unknown',
      type: SimRecordType.STATE,
      body: encodeSimState({
        format: 2,
        generation: store.generation,
        softMemory: store.softMemory,
        hypervisor: store.hypervisor.describe(),
        domains,
        specialPerms: [...store.specialPerms],
        connections: simConnections,
        wideDomids,
        parked: daemon.parkedGuestsSaved().map((p) => ({
          domid: p.client.domid,
          fd: fds ? fds.parked(p.socket) : null,
          waitedMs: p.waitedMs,
          first: p.first.toString('base64'),
        })),
      }),
    });
    writer.write({ kind: 'unknown', type: SimRecordType.CHECKSUM, body: encodeChecksum(writer.written()) });
  }
  return writer.finish();
}

function writeConnection(writer: StreamWriter, conn: Connection, client: SavedRequester, connId: number, options: DumpOptions): void {
  const { partial, messages } = conn.unsentOutput(options.includeInFlight ?? true);
  const common = {
    kind: 'connection' as const,
    connId,
    inData: conn.unprocessedInput(options.includeInFlight ?? true),
    outRespLen: partial.length,
    outData: Buffer.concat([partial, ...messages, ...(options.extraOutput?.has(conn) ? [options.extraOutput.get(conn)!] : [])]),
  };
  const domain = conn.client.domain;
  if (client.ring && domain) {
    writer.write({
      ...common,
      connType: 'ring',
      domid: client.domid,
      tdomid: client.target ?? DOMID_INVALID,
      evtchn: domain.port,
      ...(options.c417 ? {} : { uniqueId: domain.uniqueId }),
    });
  } else {
    writer.write({ ...common, connType: 'socket', socketFd: options.descriptors?.socket(conn) ?? -1 });
  }
}
