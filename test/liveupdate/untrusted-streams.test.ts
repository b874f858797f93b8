/**
 * Streams come from outside (a file handed to --restore, a domain exported
 * by another daemon): nothing in them is trusted. A per-domain import may
 * only add what belongs to the domain, within its quotas; a restore refuses
 * what the daemon could not save again; deep chains cost no recursion; and
 * `xenstore-stream verify` agrees with both.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { exportDomain, importDomain, MigrationError } from '../../src/liveupdate/domain-migration.js';
import { dumpDaemon } from '../../src/liveupdate/state-dump.js';
import { NO_SOCKETS, restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { verifyStream } from '../../src/liveupdate/verify-stream.js';
import { checkStore } from '../../src/store/check-store.js';
import { release } from '../../src/store/domain-ops.js';
import { saveStore } from '../../src/store/saved-store.js';
import type { NodeRecord, StreamRecord } from '../../src/stream/records.js';
import { decodeSimState, encodeSimState, SimRecordType } from '../../src/stream/sim-extension.js';
import { StreamError } from '../../src/stream/stream-error.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { encodeStream } from '../../src/stream/stream-writer.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { Harness } from '../protocol/harness.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

function harness(...argv: string[]): Harness {
  const h = new Harness({ argv });
  harnesses.push(h);
  return h;
}

function node(p: string, owner: number, value = ''): NodeRecord {
  return { kind: 'node', connId: 0, txId: 0, path: p, value: Buffer.from(value, 'latin1'), access: 0, perms: [{ perm: 'n', stale: false, domid: owner }] };
}

const RING: StreamRecord = {
  kind: 'connection', connType: 'ring', connId: 1, domid: 7, tdomid: 0x7ff4, evtchn: 9, inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0),
};

/** A per-domain stream for domain 7: its ring connection, then `records`. */
function domainStream(...records: StreamRecord[]): Buffer {
  return encodeStream({ version: 2, bigEndian: false }, [RING, ...records]);
}

/** `top`, then `levels` nodes below it, each the child of the one before, owned by 7. */
function chain(levels: number, top = '/local/domain/7'): NodeRecord[] {
  const out: NodeRecord[] = [node(top, 7)];
  for (let i = 0, p = top; i < levels; i++) out.push(node((p = `${p}/c`), 7));
  return out;
}

function nodesOf(h: Harness): string {
  return JSON.stringify(saveStore(h.store).nodes);
}

describe('import-domain trusts nothing in the stream', () => {
  it("refuses nodes outside the domain's home that exist here or belong to another domain, and changes nothing", () => {
    const h = harness();
    h.req(h.adminConn(), T.WRITE, '/local/domain/0/secret|s3cret');
    const before = nodesOf(h);
    const attempts: [StreamRecord[], string][] = [
      [[node('/local/domain/7', 7), node('/local/domain/0/secret', 7, 'mine')], '/local/domain/0/secret is outside /local/domain/7 and exists here'],
      [[node('/local/domain/7', 7), node('/tool/xenstored', 7, 'mine')], '/tool/xenstored is outside /local/domain/7 and exists here'],
      [[node('/local/domain/7', 7), node('/tool/planted', 0)], '/tool/planted is outside /local/domain/7 and owned by domain 0'],
      [[node('/local/domain/7', 7), node('/nowhere/x', 7)], 'the parent of /nowhere/x is neither here nor earlier in the stream'],
    ];
    for (const [records, why] of attempts) {
      expect(() => importDomain(h.daemon, domainStream(...records))).toThrow(new MigrationError(why));
      expect(nodesOf(h)).toBe(before);
      expect(h.store.domains.introduced(7)).toBeUndefined();
    }
    expect(h.req(h.adminConn(), T.GET_PERMS, '/local/domain/0/secret|')).toBe('=n0|');
    checkStore(h.store);
  });

  it('takes nodes the domain owns outside its home when this daemon does not have them', () => {
    const h = harness();
    importDomain(h.daemon, domainStream(node('/local/domain/7', 7), node('/tool/guest7', 7, 'ok')));
    expect(h.req(h.adminConn(), T.READ, '/tool/guest7|')).toBe('=ok');
    expect(h.store.domains.get(7)!.nodeCount).toBe(2);
    checkStore(h.store);
  });

  it("applies the domain's quotas here: nodes, watches, transactions, and no quota above this daemon's", () => {
    const h = harness();
    const before = nodesOf(h);
    const watches: StreamRecord[] = Array.from({ length: 200 }, (_, i) => ({ kind: 'watch', connId: 1, path: `w${i}`, token: 't' }));
    const txs: StreamRecord[] = Array.from({ length: 50 }, (_, i) => ({ kind: 'transaction', connId: 1, txId: i + 1 }));
    const cases: [StreamRecord[], string][] = [
      [[node('/local/domain/7', 7), ...Array.from({ length: 1100 }, (_, i) => node(`/local/domain/7/n${i}`, 7))], 'domain 7 would own 1101 nodes, over its quota of 1000'],
      [[node('/local/domain/7', 7), ...watches], '200 watches, over the quota of 128'],
      [[node('/local/domain/7', 7), ...txs], '50 transactions, over the quota of 10'],
      [[node('/local/domain/7', 7), { kind: 'domain', domid: 7, features: 0, quotas: [{ name: 'nodes', value: 1_000_000 }] }], "quota nodes of 1000000 in the stream exceeds this daemon's 1000"],
    ];
    for (const [records, why] of cases) {
      expect(() => importDomain(h.daemon, domainStream(...records))).toThrow(new MigrationError(why));
      expect(nodesOf(h)).toBe(before);
    }
    checkStore(h.store);
  });

  it('an imported transaction still cannot commit after a live update: historyUnknown is saved with the transaction', () => {
    const h = harness();
    importDomain(h.daemon, domainStream(node('/local/domain/7', 7), { kind: 'transaction', connId: 1, txId: 3 }));
    const restored = restoreDaemon(h.daemon.options, dumpDaemon(h.daemon, { version: 2 }), NO_SOCKETS).daemon;
    const guest = saveStore(restored.store).clients.find((c) => c.ring && c.domid === 7)!;
    expect(guest.transactions.map((tx) => [tx.id, tx.historyUnknown])).toEqual([[3, true]]);
  });

  it('imports a 4,000-level and a 12,000-level chain without recursion; the domain can then be released and the daemon dumped', () => {
    for (const levels of [4_000, 12_000]) {
      const h = harness('-E', '0', '-M', '0', '-S', '0');
      importDomain(h.daemon, domainStream(...chain(levels)));
      expect(h.store.domains.get(7)!.nodeCount).toBe(levels + 1);
      checkStore(h.store);
      const dumped = dumpDaemon(h.daemon, { version: 2 });
      checkStore(restoreDaemon(h.daemon.options, dumped, NO_SOCKETS).daemon.store);
      release(h.store, h.daemon, 7);
      expect(h.req(h.adminConn(), T.READ, '/local/domain/7|')).toBe('ENOENT');
      checkStore(h.store);
      dumpDaemon(h.daemon, { version: 2 });
    }
  });
});

/** The records of `stream` but its checksum, which would (rightly) refuse any edit first, as a stream of an older build has none. */
function withoutChecksum(stream: Buffer): StreamRecord[] {
  return decodeStream(stream).records.map(({ record }) => record).filter((r) => r.kind !== 'unknown' || r.type !== SimRecordType.CHECKSUM);
}

/** Where every leaf value of `value` is, as keys from the top. */
function leafPaths(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') out.push(at);
  else for (const [k, v] of Object.entries(value)) leafPaths(v, [...at, Array.isArray(value) ? Number(k) : k], out);
  return out;
}

function setLeaf(top: Record<string, unknown>, at: (string | number)[], value: unknown): void {
  let o = top as Record<string | number, unknown>;
  for (const k of at.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[at.at(-1)!] = value;
}

/** A dump of a daemon with a guest, whose xenstored-sim state record `edit` changes. */
function dumpWithSimState(edit: (state: ReturnType<typeof decodeSimState>) => void): Buffer {
  const h = harness();
  h.guest(5);
  const records = withoutChecksum(dumpDaemon(h.daemon, { version: 2 })).map((record) => {
    if (record.kind !== 'unknown' || record.type !== SimRecordType.STATE) return record;
    const state = decodeSimState(record.body);
    edit(state);
    return { ...record, body: encodeSimState(state) };
  });
  return encodeStream({ version: 2, bigEndian: false }, records);
}

describe('--restore refuses what the daemon could not save again', () => {
  const options = () => harness().daemon.options;

  it('a 12,000-level chain restores, dumps and restores again (no recursion on path depth)', () => {
    const records: StreamRecord[] = [{ kind: 'global', socketFd: -1, evtchnFd: -1 }, node('/', 0), node('/local', 0), node('/local/domain', 0), ...chain(12_000)];
    const { daemon } = restoreDaemon(options(), encodeStream({ version: 2, bigEndian: false }, records), NO_SOCKETS);
    checkStore(daemon.store);
    const again = restoreDaemon(options(), dumpDaemon(daemon, { version: 2 }), NO_SOCKETS).daemon;
    expect(JSON.stringify(saveStore(again.store).nodes)).toBe(JSON.stringify(saveStore(daemon.store).nodes));
  });

  it.each([
    ['a negative soft memory quota', (s: ReturnType<typeof decodeSimState>) => (s.softMemory = -1), 'soft memory quota -1 is not a u32'],
    ['a hypervisor domain beyond 16 bits', (s: ReturnType<typeof decodeSimState>) => s.hypervisor.domains.push([70000, 'running', '99']), 'the hypervisor has domain 70000'],
    ['a domain quota that is not a number', (s: ReturnType<typeof decodeSimState>) => ((s.domains[0]!.quotas as Record<string, unknown>).nodes = 'many'), 'quota nodes many is not a u32'],
    ['a guest client waiting for a domain without a ring', (s: ReturnType<typeof decodeSimState>) => (s.parked = [{ domid: 9, fd: null, waitedMs: 0, first: '' }]), 'a guest client waits for domain 9, which has no ring connection'],
    ['a guest client that waited a negative time', (s: ReturnType<typeof decodeSimState>) => (s.parked = [{ domid: 5, fd: null, waitedMs: -1, first: '' }]), 'a guest client of domain 5 waited -1 ms'],
    ['a node count that does not add up', (s: ReturnType<typeof decodeSimState>) => (s.domains[0]!.nodeCount = 1e9), undefined],
  ])('a simulator record with %s', (_what, edit, why) => {
    const stream = dumpWithSimState(edit);
    const attempt = () => restoreDaemon(options(), stream, NO_SOCKETS);
    if (why === undefined) {
      // The count is derived: a restore recounts it rather than believing the stream.
      checkStore(attempt().daemon.store);
      return;
    }
    expect(attempt).toThrow(StreamError);
    expect(attempt).toThrow(why);
    expect(() => verifyStream(stream)).toThrow(why);
  });

  it('a simulator record with any values changed: restore refuses it, or the daemon can dump (v1 and v2) and restore again', () => {
    // Guests with watches, an open transaction with a write and a permission change: clients with every part filled in.
    const h = harness();
    const [g5, g7] = [h.guest(5), h.guest(7)];
    h.req(g5, T.WRITE, 'a\0x');
    h.req(g5, T.WATCH, 'a\0tok\0');
    h.req(g7, T.WATCH, '/local\0t7\0');
    const tx = h.txStart(g7);
    h.req(g7, T.WRITE, 'b\0inside', tx);
    h.req(g5, T.SET_PERMS, 'a\0n5\0r7\0');
    const records = withoutChecksum(dumpDaemon(h.daemon, { version: 2 }));
    const at = records.findIndex((r) => r.kind === 'unknown' && r.type === SimRecordType.STATE);
    const state = decodeSimState((records[at] as { body: Buffer }).body);
    const leaves = leafPaths(state);
    const odd = fc.constantFrom<unknown>(-1, 0, 1, 0.5, 5, 7, 65536, 32752, 2 ** 32, 1e300, -5n, 5n, 2n ** 64n, null, true, 'x', '', '../x', '/tool/xenstored', [], {}, [[0, 70000]]);
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(leaves.length - 1), fc.oneof(odd, fc.string(), fc.integer())), { minLength: 1, maxLength: 3 }), (edits) => {
      const edited = structuredClone(state) as unknown as Record<string, unknown>;
      for (const [leaf, value] of edits) setLeaf(edited, leaves[leaf]!, value);
      const changed = records.slice();
      changed[at] = { ...(records[at] as StreamRecord & { kind: 'unknown' }), body: encodeSimState(edited as never) };
      const stream = encodeStream({ version: 2, bigEndian: false }, changed);
      let restored;
      try {
        restored = restoreDaemon(h.daemon.options, stream, NO_SOCKETS).daemon;
      } catch (e) {
        expect(e).toBeInstanceOf(StreamError);
        return;
      }
      checkStore(restored.store);
      for (const version of [1, 2] as const) restoreDaemon(h.daemon.options, dumpDaemon(restored, { version }), NO_SOCKETS);
    }), { numRuns: 1000 });
  });

  it('two ring connections for one domid', () => {
    const records: StreamRecord[] = [{ kind: 'global', socketFd: -1, evtchnFd: -1 }, RING, { ...RING, connId: 2 }, node('/', 0)];
    const stream = encodeStream({ version: 2, bigEndian: false }, records);
    const why = 'domain 7 already has a ring connection (CONNECTION_DATA #1)';
    expect(() => restoreDaemon(options(), stream, NO_SOCKETS)).toThrow(why);
    expect(() => verifyStream(stream)).toThrow(why);
  });

  it('`domain create` refuses a domid a hypervisor never hands out', () => {
    const h = harness('--explicit-domains');
    expect(h.control('domain', 'create', '70000').text).toBe('EINVAL');
    expect(h.control('domain', 'create', '32752').text).toBe('EINVAL');
    expect(h.control('domain', 'create', '32751').text).toBe('OK');
    dumpDaemon(h.daemon, { version: 2 });
  });
});

describe('xenstore-stream verify judges as restore and import do', () => {
  it("accepts a genuine export-domain stream as one domain's", () => {
    const h = harness();
    h.req(h.adminConn(), T.WRITE, '/local/domain/7/data|x');
    h.req(h.adminConn(), T.SET_PERMS, '/local/domain/7|n7|');
    h.guest(7);
    expect(verifyStream(exportDomain(h.daemon, 7))).toEqual({ kind: 'domain', domid: 7 });
  });

  it('accepts a whole dump as a state, and refuses a domain stream that would overwrite what is not its own', () => {
    const h = harness();
    expect(verifyStream(dumpDaemon(h.daemon, { version: 2 }))).toEqual({ kind: 'state' });
    expect(() => verifyStream(domainStream(node('/local/domain/7', 7), node('/tool/xenstored', 7)))).toThrow(MigrationError);
  });
});
