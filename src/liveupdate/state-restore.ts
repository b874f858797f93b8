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
import type { SavedRequester } from '../store/requester.js';
import type { DomainUpdate } from '../store/domains.js';
import { StoreImport } from '../store/store-import.js';
import { isQuotaName, type Quotas } from '../store/quotas.js';
import type { ConnectionRecord, DecodedRecord, GlobalRecord, QuotaEntry } from '../stream/records.js';
import { checksumMatches, decodeGenerations, decodeSimState, SimRecordType, type SimConnection, type SimParkedGuest, type SimState } from '../stream/sim-extension.js';
import { recordSite } from '../stream/body-reader.js';
import { StreamChecker } from '../stream/stream-check.js';
import { StreamError } from '../stream/stream-error.js';
import { iterateStream, readHeader } from '../stream/stream-reader.js';
import { markPause } from './pause-trace.js';
import { checkSavedClient } from './saved-client-check.js';
import { committedNodeFrom, touchedFrom, transactionFrom, watchFrom } from './record-values.js';

/** Where the restored daemon finds the sockets the stream refers to. */
export interface SocketSource {
  listening(record: GlobalRecord): net.Server | undefined;
  socket(record: ConnectionRecord, connIndex: number): net.Socket | undefined;
  guest(sim: SimConnection, connIndex: number): net.Socket | undefined;
  domainListener(domid: number, sim: SimConnection | undefined): net.Server | undefined;
  /** The socket of the `index`th guest client waiting for its domain's ring. */
  parked(saved: SimParkedGuest, index: number): net.Socket | undefined;
}

export const NO_SOCKETS: SocketSource = {
  listening: () => undefined,
  socket: () => undefined,
  guest: () => undefined,
  domainListener: () => undefined,
  parked: () => undefined,
};

export interface Restored {
  daemon: Daemon;
  /** Requests received before the dump; feed them in once the daemon runs. */
  replay(): void;
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

/** A connection as the standard records describe it, until the stream's end says all. */
interface StreamConnection {
  record: ConnectionRecord;
  client: SavedRequester;
}

/**
 * Rebuilds a daemon from `stream`. Sockets are taken from `sockets` only
 * once everything else has been restored, so a failure never leaves a
 * descriptor half adopted (a live update can then fall back cleanly).
 */
export function restoreDaemon(options: DaemonOptions, stream: Buffer, sockets: SocketSource, log?: (line: string) => void): Restored {
  const { version } = readHeader(stream);
  const checker = new StreamChecker({ purpose: 'restore' });
  const daemon = new Daemon(options, log, false);
  const importer = new StoreImport(daemon.store);
  const conns = new Map<number, StreamConnection>();
  const domains = new Map<number, DomainUpdate>();
  let sim: SimState | undefined;
  let generations: Buffer | undefined;
  let global: GlobalRecord | undefined;

  for (const at of iterateStream(stream)) {
    const problem = checker.check(at);
    if (problem) throw problem;
    const r = at.record;
    switch (r.kind) {
      case 'global':
        global = r;
        break;
      case 'globalQuota':
        for (const { name, value } of [...r.domainQuotas, ...r.globalQuotas]) importer.setQuota(name, value);
        break;
      case 'connection':
        conns.set(r.connId, { record: r, client: clientFrom(r) });
        if (r.connType === 'ring') {
          // Known before every node: no permission naming it is stale.
          domains.set(r.domid, { domid: r.domid, generation: 0, introduced: true, port: r.evtchn, ...(r.uniqueId === undefined ? {} : { uniqueId: r.uniqueId }) });
        }
        break;
      case 'watch':
        conns.get(r.connId)!.client.watches.push(watchFrom(r));
        break;
      case 'transaction':
        conns.get(r.connId)!.client.transactions.push(transactionFrom(r.txId, 0));
        break;
      case 'node':
        if (r.connId === 0) importer.addNode(committedNodeFrom(r));
        else conns.get(r.connId)!.client.transactions.find((tx) => tx.id === r.txId)!.touched.push(touchedFrom(r));
        break;
      case 'domain': {
        const known: DomainUpdate = domains.get(r.domid) ?? { domid: r.domid };
        if (version >= 2) known.features = r.features;
        domains.set(r.domid, { ...known, quotas: { ...known.quotas, ...quotasFrom(r.quotas) } });
        break;
      }
      case 'unknown':
        if (r.type === SimRecordType.STATE) sim = decodeSimStateAt(at, r.body);
        else if (r.type === SimRecordType.NODE_GENERATIONS) generations = r.body;
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
  markPause('records decoded');
  const end = checker.finish(stream.length);
  if (end) throw end;

  const restored = inconsistentAtEnd(stream.length, () => {
    if (generations) importer.setGenerations(decodeGenerations(generations, importer.nodeCount));
    if (sim) {
      importer.setQuota('soft-memory', sim.softMemory);
      importer.setHypervisor(sim.hypervisor);
      for (const d of sim.domains) importer.setDomain(d);
      for (const [path, perms] of sim.specialPerms) importer.setSpecialPerms(path, perms);
      for (const { path, entries } of sim.wideDomids) importer.widenDomids(path, entries);
      const saved = new Map(sim.connections.map((c) => [c.connId, c.client]));
      for (const [connId, conn] of conns) conn.client = sameConnection(conn.client, saved.get(connId));
    } else {
      for (const d of domains.values()) importer.setDomain(d);
    }
    const made: [Connection, ConnectionRecord, number][] = [];
    for (const { record, client } of conns.values()) {
      const conn = daemon.connectionFor(importer.addClient(client));
      conn.restoreOutput(record.outData.subarray(0, record.outRespLen), splitMessages(record.outData.subarray(record.outRespLen)));
      made.push([conn, record, made.length]);
    }
    importer.finish(sim?.generation);
    checkParked(sim?.parked ?? [], made);
    return made;
  });
  markPause('store rebuilt');
  attachSockets(daemon, sockets, global, restored, sim);
  parkGuests(daemon, sockets, sim?.parked ?? [], restored);
  markPause('sockets adopted');
  const pendingInput = restored.filter(([, record]) => record.inData.length > 0);
  return { daemon, replay: () => pendingInput.forEach(([conn, record]) => daemon.receive(conn, record.inData)) };
}

/** A client as its CONNECTION_DATA says; watches and transactions follow in their own records. */
function clientFrom(r: ConnectionRecord): SavedRequester {
  return {
    ring: r.connType === 'ring', domid: r.connType === 'ring' ? r.domid : 0,
    target: r.connType === 'ring' && r.tdomid !== DOMID_INVALID ? r.tdomid : undefined,
    nextTransactionId: 1, transactionsSince: 0, ignored: false, watches: [], transactions: [],
  };
}

/** The simulator's whole saved client for a CONNECTION_DATA, which must describe the same connection. */
function sameConnection(standard: SavedRequester, whole: SavedRequester | undefined): SavedRequester {
  if (!whole) return standard;
  checkSavedClient(whole);
  if (whole.ring !== standard.ring || (standard.ring && whole.domid !== standard.domid)) {
    throw new Error(`xenstored-sim state: a connection is ${whole.ring ? `domain ${String(whole.domid)}'s ring` : 'a socket'}, its CONNECTION_DATA says ${standard.ring ? `domain ${standard.domid}'s ring` : 'a socket'}`);
  }
  return whole;
}

/** The quotas this daemon knows, by name; others are ignored, as C does. */
function quotasFrom(entries: readonly QuotaEntry[]): Partial<Quotas> {
  return Object.fromEntries(entries.filter((q) => isQuotaName(q.name)).map((q) => [q.name, q.value]));
}

function decodeSimStateAt(at: DecodedRecord, body: Buffer): SimState {
  try {
    return decodeSimState(body);
  } catch (e) {
    throw new StreamError('XS_STREAM_INCONSISTENT', { offset: at.offset, recordIndex: at.index, recordType: at.record.kind }, `xenstored-sim state: ${(e as Error).message}`);
  }
}

/** Runs the last steps of a restore; what the store refuses then is the stream's fault, located at its end. */
function inconsistentAtEnd<T>(offset: number, steps: () => T): T {
  try {
    return steps();
  } catch (e) {
    if (e instanceof StreamError) throw e;
    throw new StreamError('XS_STREAM_INCONSISTENT', { offset }, (e as Error).message);
  }
}

/** Waiting guest clients must wait for a ring this stream has, and say how long they waited. */
function checkParked(parked: readonly SimParkedGuest[], made: readonly [Connection, ConnectionRecord, number][]): void {
  const rings = ringsByDomid(made);
  for (const p of parked) {
    if (!rings.has(p.domid)) throw new Error(`a guest client waits for domain ${String(p.domid)}, which has no ring connection`);
    if (typeof p.waitedMs !== 'number' || !(p.waitedMs >= 0)) throw new Error(`a guest client of domain ${p.domid} waited ${String(p.waitedMs)} ms`);
    if (typeof p.first !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(p.first)) throw new Error(`a guest client of domain ${p.domid} has bad first bytes`);
  }
}

/** Guest clients waiting for their domain's ring wait on, in the order they came. */
function parkGuests(daemon: Daemon, sockets: SocketSource, parked: readonly SimParkedGuest[], made: readonly [Connection, ConnectionRecord, number][]): void {
  const rings = ringsByDomid(made);
  parked.forEach((p, index) => {
    const socket = sockets.parked(p, index);
    if (socket) daemon.parkGuest(rings.get(p.domid)!.client, socket, p.waitedMs, Buffer.from(p.first, 'base64'));
  });
}

function ringsByDomid(made: readonly [Connection, ConnectionRecord, number][]): Map<number, Connection> {
  return new Map(made.filter(([conn]) => conn.client.domain).map(([conn]) => [conn.client.domid, conn]));
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
