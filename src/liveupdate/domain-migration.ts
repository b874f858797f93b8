/**
 * Per-domain migration, the stream's first purpose: export one guest's
 * state (its ring connection, watches, open transactions, its home subtree
 * and the nodes it owns elsewhere, its quotas) from one daemon and import
 * it into another. Imported transactions exist but fail with EAGAIN at
 * commit, as the stream's design intends: the receiver cannot know what
 * they conflicted with. The guest client then reconnects to the new
 * daemon's domain socket.
 */
import type { LiveUpdateHost } from './host.js';
import { DOMID_INVALID, INTRODUCE_DOMAIN } from '../wire/vocabulary.js';
import { saveRequester, type SavedRequester } from '../store/requester.js';
import { clientOf } from '../store/domain-ops.js';
import { importDomain as importIntoStore, type ImportedDomain } from '../store/domain-import.js';
import { fireSpecialEvent } from '../store/events.js';
import { forEachSavedNode } from '../store/saved-store.js';
import { StoreImportError } from '../store/store-import.js';
import type { RingConnectionRecord, StreamRecord } from '../stream/records.js';
import { StreamChecker } from '../stream/stream-check.js';
import { StreamError } from '../stream/stream-error.js';
import { iterateStream } from '../stream/stream-reader.js';
import { encodeStream } from '../stream/stream-writer.js';
import { committedNodeFrom, committedNodeRecord, touchedFrom, transactionFrom, transactionRecords, watchFrom, watchRecord } from './record-values.js';

export class MigrationError extends Error {}

/** The stream for one introduced domain (version 2, little-endian). */
export function exportDomain(daemon: LiveUpdateHost, domid: number): Buffer {
  const { store } = daemon;
  const domain = store.domains.introduced(domid);
  const client = domain && clientOf(store, domain);
  if (!domain || !client) throw new MigrationError(`domain ${domid} is not introduced`);
  const saved = saveRequester(client);
  const records: StreamRecord[] = [{
    kind: 'connection', connType: 'ring', connId: 1, domid, tdomid: saved.target ?? DOMID_INVALID, evtchn: domain.port,
    uniqueId: domain.uniqueId, inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0),
  }];
  for (const w of saved.watches) records.push(watchRecord(1, w));
  for (const tx of saved.transactions) records.push(...transactionRecords(1, tx));
  const home = client.home;
  forEachSavedNode(store, (node) => {
    const inHome = node.path === home || node.path.startsWith(`${home}/`);
    if (inHome || node.perms[0]!.domid === domid) records.push(committedNodeRecord(node));
  });
  records.push({ kind: 'domain', domid, features: domain.features, quotas: Object.entries(domain.quotas).map(([name, value]) => ({ name, value })) });
  return encodeStream({ version: 2, bigEndian: false }, records);
}

/**
 * Imports a domain exported by `exportDomain` (or any stream holding one
 * ring connection). The stream is checked record by record with the same
 * checker a restore uses, then the store checks it against what it holds;
 * nothing changes unless both accept it.
 */
export function importDomain(daemon: LiveUpdateHost, stream: Buffer): number {
  const imported = domainFrom(stream);
  let client;
  try {
    client = importIntoStore(daemon.store, imported);
  } catch (e) {
    if (e instanceof StoreImportError) throw new MigrationError(e.message);
    throw e;
  }
  daemon.connectionReset(client);
  fireSpecialEvent(daemon.store, INTRODUCE_DOMAIN, imported.domid, true);
  daemon.flush();
  return imported.domid;
}

/** The records of a domain stream as the values the store imports. */
function domainFrom(stream: Buffer): ImportedDomain {
  const checker = new StreamChecker({ purpose: 'import' });
  let ring: RingConnectionRecord | undefined;
  const client: SavedRequester = { ring: true, domid: 0, target: undefined, nextTransactionId: 1, transactionsSince: 0, ignored: false, watches: [], transactions: [] };
  const imported: ImportedDomain = { domid: 0, port: 0, features: undefined, quotas: [], client, nodes: [] };
  for (const at of iterateStream(stream)) {
    const problem = checker.check(at);
    if (problem) throw problem;
    const r = at.record;
    if (r.kind === 'connection' && r.connType === 'ring') ring = r;
    else if (r.kind === 'watch') client.watches.push(watchFrom(r));
    else if (r.kind === 'transaction') client.transactions.push(transactionFrom(r.txId, 0));
    else if (r.kind === 'node' && r.connId === 0) imported.nodes.push(committedNodeFrom(r));
    else if (r.kind === 'node') client.transactions.find((tx) => tx.id === r.txId)!.touched.push(touchedFrom(r));
    else if (r.kind === 'domain' && ring && r.domid === ring.domid) {
      imported.features = r.features;
      imported.quotas = r.quotas;
    }
  }
  const end = checker.finish(stream.length);
  if (end || !ring) throw end ?? new StreamError('XS_STREAM_INCONSISTENT', { offset: stream.length }, 'a domain stream holds exactly one ring connection');
  client.domid = ring.domid;
  client.target = ring.tdomid === DOMID_INVALID ? undefined : ring.tdomid;
  return { ...imported, domid: ring.domid, port: ring.evtchn };
}
