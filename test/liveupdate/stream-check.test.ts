import { describe, expect, it } from 'vitest';
import { recordTypeName, recordTypeOf, type NodePerm, type StreamRecord } from '../../src/stream/records.js';
import { checkStream, pathProblem, type CheckOptions } from '../../src/stream/stream-check.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { encodeStream } from '../../src/stream/stream-writer.js';

const OWNER: NodePerm[] = [{ perm: 'n', stale: false, domid: 0 }];
const global: StreamRecord = { kind: 'global', socketFd: 3, evtchnFd: 4 };
const quota: StreamRecord = { kind: 'globalQuota', domainQuotas: [{ name: 'nodes', value: 1000 }], globalQuotas: [] };
const conn = (connId: number): StreamRecord => ({
  kind: 'connection', connId, connType: 'socket', socketFd: 9, inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0),
});
const watch = (connId: number, path = '/a'): StreamRecord => ({ kind: 'watch', connId, path, token: 'tok' });
const tx = (connId: number, txId: number): StreamRecord => ({ kind: 'transaction', connId, txId });
const node = (path: string, perms = OWNER): StreamRecord => ({
  kind: 'node', connId: 0, txId: 0, path, value: Buffer.alloc(0), access: 0, perms,
});
const pending = (connId: number, txId: number, path: string, access: number, perms = OWNER, value = Buffer.alloc(0)): StreamRecord => ({
  kind: 'node', connId, txId, path, value, access, perms,
});
const domain = (domid: number, name = 'nodes'): StreamRecord => ({ kind: 'domain', domid, features: 0, quotas: [{ name, value: 1 }] });

/** Runs the check on the records as they come out of a real stream, so offsets are real. */
function check(records: StreamRecord[], options?: CheckOptions) {
  const decoded = decodeStream(encodeStream({ version: 2, bigEndian: false }, records)).records;
  return { decoded, problem: checkStream(decoded, options) };
}

describe('stream check: accepted streams', () => {
  it.each<[string, StreamRecord[], CheckOptions?]>([
    ['the live-update order C master writes', [global, quota, conn(1), watch(1), node('/'), node('/local'), node('@releaseDomain'), domain(1)]],
    ['a root already present in the store', [node('/tool'), node('/tool/xenstored')]],
    ['pre-existing parents', [node('/local/domain/5/data')], { preExisting: ['/local/domain/5'] }],
    ['a pending transaction with a deleted node', [conn(2), tx(2, 7), pending(2, 7, '/x/y', 0, []), pending(2, 7, '/x', 3)]],
    ['relative and special watch paths', [conn(1), watch(1, 'device/vif'), watch(1, '@introduceDomain')]],
    ['unknown records anywhere', [{ kind: 'unknown', type: 99, body: Buffer.alloc(8) }, global]],
  ])('%s', (_name, records, options) => {
    expect(check(records, options).problem).toBeUndefined();
  });
});

describe('stream check: problems', () => {
  it.each<[string, StreamRecord[], number, string, CheckOptions?]>([
    ['GLOBAL_DATA after other records', [conn(1), global], 1, 'must come before all other records, but CONNECTION_DATA #0 precedes it'],
    ['GLOBAL_QUOTA_DATA after other records', [global, node('/a'), quota], 2, 'must come before all other records, but NODE_DATA #1 precedes it'],
    ['GLOBAL_DATA twice', [global, global], 1, 'appears twice (first as GLOBAL_DATA #0)'],
    ['conn-id 0', [conn(0)], 0, 'conn-id 0 is reserved for committed nodes'],
    ['duplicate conn-id', [conn(1), conn(2), conn(1)], 2, 'conn-id 1 already used by CONNECTION_DATA #0'],
    ['a watch before its connection', [watch(1), conn(1)], 0, 'conn-id 1 has no earlier CONNECTION_DATA'],
    ['a transaction of an unknown connection', [conn(1), tx(2, 1)], 1, 'conn-id 2 has no earlier CONNECTION_DATA'],
    ['tx-id 0', [conn(1), tx(1, 0)], 1, 'tx-id 0 means "no transaction"'],
    ['duplicate tx-id', [conn(1), tx(1, 5), tx(1, 5)], 2, 'tx-id 5 of conn-id 1 already declared by TRANSACTION_DATA #1'],
    ['a pending node before its transaction', [conn(1), pending(1, 5, '/a', 2), tx(1, 5)], 1,
      'transaction 5 of conn-id 1 has no earlier TRANSACTION_DATA'],
    ['a committed node without a known parent', [node('/a/b')], 0,
      'parent /a of /a/b is neither pre-existing nor restored by an earlier NODE_DATA'],
    ['a child before its parent', [node('/a/b'), node('/a')], 0,
      'parent /a of /a/b is neither pre-existing nor restored by an earlier NODE_DATA'],
    ['no pre-existing root', [node('/a')], 0, 'parent / of /a is neither pre-existing nor restored by an earlier NODE_DATA', { preExisting: [] }],
    ['a duplicate committed node', [node('/a'), node('/a')], 1, 'committed node /a already restored by NODE_DATA #0'],
    ['a committed node without permissions', [node('/a', [])], 0, 'committed node /a has no permissions (the first is the owner)'],
    ['a deleted pending node with permissions', [conn(1), tx(1, 1), pending(1, 1, '/a', 0)], 2,
      'pending node /a is deleted (access 0) but has 1 permissions and a 0-byte value (both must be empty)'],
    ['a deleted pending node with a value', [conn(1), tx(1, 1), pending(1, 1, '/a', 0, [], Buffer.from('x'))], 2,
      'pending node /a is deleted (access 0) but has 0 permissions and a 1-byte value (both must be empty)'],
    ['a live pending node without permissions', [conn(1), tx(1, 1), pending(1, 1, '/a', 1, [])], 2,
      'pending node /a has no permissions; only a deleted node (access 0) may have none'],
    ['a pending node twice in one transaction', [conn(1), tx(1, 1), pending(1, 1, '/a', 1), pending(1, 1, '/a', 2)], 3,
      'pending node /a appears twice in transaction 1 of conn-id 1'],
    ['two DOMAIN_DATA for one domain', [domain(3), domain(4), domain(3)], 2, 'domain 3 already described by DOMAIN_DATA #0'],
    ['an empty quota name', [domain(3, '')], 0, 'quota #0 has an empty name'],
    ['an invalid character', [node('/a b')], 0, 'path "/a b" contains " " (allowed: A-Z a-z 0-9 - / _ @)'],
    ['a relative node path', [node('a')], 0, 'path "a" is not absolute'],
    ['a trailing slash', [node('/a/')], 0, 'path "/a/" ends with /'],
    ['a double slash', [node('/a//b')], 0, 'path "/a//b" contains //'],
    ['an empty path', [node('')], 0, 'path "" is empty'],
    ['a special path ending in a slash', [node('@a/')], 0, 'path "@a/" is a malformed special @ path'],
    ['an invalid watch path', [conn(1), watch(1, 'a//b')], 1, 'watch path "a//b" contains //'],
  ])('%s', (_name, records, index, reason, options) => {
    const { decoded, problem } = check(records, options);
    const at = decoded[index];
    if (!at) throw new Error('bad test row');
    expect(problem?.code).toBe('XS_STREAM_INCONSISTENT');
    expect(problem?.offset).toBe(at.offset);
    expect(problem?.recordIndex).toBe(index);
    const type = recordTypeName(recordTypeOf(at.record));
    expect(problem?.message).toBe(`${type} #${index} at offset 0x${at.offset.toString(16)}: ${reason}`);
  });
});

describe('pathProblem', () => {
  it.each([['/'], ['/local/domain/0'], ['@releaseDomain'], ['/a-b_c@d/E9']])('accepts %s', (path) => {
    expect(pathProblem(path, false)).toBeUndefined();
  });

  it('accepts relative paths only where allowed', () => {
    expect(pathProblem('device/vbd', true)).toBeUndefined();
    expect(pathProblem('device/vbd', false)).toBe('is not absolute');
    expect(pathProblem('@', true)).toBe('is a bare @');
  });
});
