import { describe, expect, it } from 'vitest';
import { StreamError, type StreamErrorCode } from '../../src/stream/stream-error.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { AT, GOLDEN_BYTES, GOLDEN_RECORDS } from './golden.js';
import { Bytes, END_RECORD, header, patch, record, stream } from './stream-builder.js';

const LE = true;
const b = (): Bytes => new Bytes(LE);
/** A little-endian stream of the given version holding `records`. */
const v = (version: number, ...records: Buffer[]): Buffer => stream(version, LE, records);

const nodeBody = (path: string, perms = 1): Bytes => {
  const body = b().u32(0).u32(0).u16(path.length + 1).u16(0).u16(0).u16(perms);
  for (let i = 0; i < perms; i++) body.text('n').u8(0).u16(0);
  return body.cstr(path);
};
const domainBody = (features: number): Buffer =>
  b().u16(1).u16(1).u32(features).u32(1000).cstr('nodes').build();
const watchExt = (path: string, token: string, depth: number): Buffer =>
  b().u32(1).u16(path.length + 1).u16(token.length + 1).u16(depth).u16(0).cstr(path).cstr(token).build();
/** WATCH_DATA_EXTENDED exactly as C xenstored master writes it: len for 12 fixed bytes, only 8 written. */
const cMasterWatchExt = (path: string, token: string): Buffer => {
  const body = b().u32(1).u16(path.length + 1).u16(token.length + 1).cstr(path).cstr(token).pad8().build();
  const len = (12 + path.length + 1 + token.length + 1 + 7) & ~7;
  return Buffer.concat([b().u32(8).u32(len).build(), body]);
};

interface Row {
  rule: string;
  bytes: Buffer;
  code: StreamErrorCode;
  offset: number;
  message: string;
}

const rows: Row[] = [
  // Stream header.
  { rule: 'wrong ident', bytes: patch(GOLDEN_BYTES, 0, 0x58), code: 'XS_STREAM_HEADER', offset: 0,
    message: 'stream header at offset 0x0: ident is "Xenstore", not "xenstore"' },
  { rule: 'truncated header', bytes: GOLDEN_BYTES.subarray(0, 12), code: 'XS_STREAM_HEADER', offset: 0,
    message: 'stream header at offset 0x0: stream is 12 bytes, shorter than the 16-byte header' },
  { rule: 'empty file', bytes: Buffer.alloc(0), code: 'XS_STREAM_HEADER', offset: 0,
    message: 'stream header at offset 0x0: stream is 0 bytes, shorter than the 16-byte header' },
  { rule: 'unknown version', bytes: patch(GOLDEN_BYTES, 11, 3), code: 'XS_STREAM_HEADER', offset: 8,
    message: 'stream header at offset 0x8: version 3 is not supported (expected 1 or 2)' },
  { rule: 'version written little-endian', bytes: patch(GOLDEN_BYTES, 8, 2, 0, 0, 0), code: 'XS_STREAM_HEADER', offset: 8,
    message: 'stream header at offset 0x8: version 33554432 is not supported (expected 1 or 2)' },
  { rule: 'reserved flag bits', bytes: patch(GOLDEN_BYTES, 15, 2), code: 'XS_STREAM_HEADER', offset: 12,
    message: 'stream header at offset 0xc: flags 0x2 has reserved bits set (only bit 0, big-endian, is defined)' },
  // Framing.
  { rule: 'truncated record header', bytes: GOLDEN_BYTES.subarray(0, AT.global + 4), code: 'XS_STREAM_TRUNCATED', offset: AT.global,
    message: 'record #0 at offset 0x10: only 4 of the 8 record-header bytes are present (no END record)' },
  { rule: 'len past the end of the stream', bytes: GOLDEN_BYTES.subarray(0, AT.watch + 12), code: 'XS_STREAM_TRUNCATED', offset: AT.watch,
    message: 'WATCH_DATA #2 at offset 0x48: len 16 runs past the end of the stream (4 bytes left)' },
  { rule: 'missing END', bytes: GOLDEN_BYTES.subarray(0, AT.end), code: 'XS_STREAM_TRUNCATED', offset: AT.end,
    message: 'record #5 at offset 0xa8: stream ends without an END record' },
  { rule: 'bytes after END', bytes: Buffer.concat([GOLDEN_BYTES, Buffer.alloc(8)]), code: 'XS_STREAM_TRAILING', offset: AT.end,
    message: 'END #5 at offset 0xa8: 8 bytes follow the END record' },
  { rule: 'END with a body', bytes: Buffer.concat([patch(GOLDEN_BYTES, AT.end + 4, 8), Buffer.alloc(8)]), code: 'XS_STREAM_MALFORMED', offset: AT.end,
    message: 'END #5 at offset 0xa8: END has len 8; it must be 0' },
  { rule: 'len larger than content plus padding', bytes: v(2, record(LE, 1, b().i32(3).i32(4).zeros(8).build())), code: 'XS_STREAM_MALFORMED', offset: 16,
    message: 'GLOBAL_DATA #0 at offset 0x10: len 16 leaves 8 bytes after the 8-byte content; only padding to the next multiple of 8 may follow' },
  { rule: 'body shorter than the fixed part', bytes: v(2, record(LE, 4, b().u32(1).build(), 4)), code: 'XS_STREAM_MALFORMED', offset: 16,
    message: 'TRANSACTION_DATA #0 at offset 0x10: body is 4 bytes, shorter than the 8-byte fixed part' },
  // Strings.
  { rule: 'string not NUL-terminated', bytes: patch(GOLDEN_BYTES, AT.watch + 19, 0x78), code: 'XS_STREAM_MALFORMED', offset: AT.watch,
    message: 'WATCH_DATA #2 at offset 0x48: path is not NUL-terminated (byte 3 of path-len 4 is 0x78)' },
  { rule: 'NUL inside a string', bytes: patch(GOLDEN_BYTES, AT.watch + 17, 0), code: 'XS_STREAM_MALFORMED', offset: AT.watch,
    message: 'WATCH_DATA #2 at offset 0x48: path contains a NUL at byte 1 before its terminator at byte 3' },
  { rule: 'zero-length path', bytes: patch(GOLDEN_BYTES, AT.root + 16, 0), code: 'XS_STREAM_MALFORMED', offset: AT.root,
    message: 'NODE_DATA #3 at offset 0x60: path-len is 0: a path needs at least its NUL terminator' },
  { rule: 'zero-length token', bytes: patch(GOLDEN_BYTES, AT.watch + 14, 0), code: 'XS_STREAM_MALFORMED', offset: AT.watch,
    message: 'WATCH_DATA #2 at offset 0x48: token-len is 0: a token needs at least its NUL terminator' },
  { rule: 'path-len past the record end', bytes: patch(GOLDEN_BYTES, AT.local + 16, 40), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: 'NODE_DATA #4 at offset 0x80: path-len 40 runs past the record end (body 32 bytes)' },
  // NODE_DATA fields.
  { rule: 'value-len past the record end', bytes: patch(GOLDEN_BYTES, AT.local + 18, 9), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: 'NODE_DATA #4 at offset 0x80: value-len 9 runs past the record end (body 32 bytes)' },
  { rule: 'perm-count past the record end', bytes: patch(GOLDEN_BYTES, AT.local + 22, 5), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: 'NODE_DATA #4 at offset 0x80: perm-count 5 runs past the record end (body 32 bytes)' },
  { rule: 'invalid perm char', bytes: patch(GOLDEN_BYTES, AT.local + 24, 0x78), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: "NODE_DATA #4 at offset 0x80: perm #0 has perm byte 0x78, not one of 'n', 'r', 'w', 'b'" },
  { rule: 'reserved perm flag', bytes: patch(GOLDEN_BYTES, AT.local + 29, 2), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: 'NODE_DATA #4 at offset 0x80: perm #1 has reserved flag bits set (flags 0x02)' },
  { rule: 'reserved access bits', bytes: patch(GOLDEN_BYTES, AT.local + 20, 4), code: 'XS_STREAM_MALFORMED', offset: AT.local,
    message: 'NODE_DATA #4 at offset 0x80: access 0x4 has reserved bits set (only 0x1 read and 0x2 written exist)' },
  // Padding.
  { rule: 'non-zero padding after a string', bytes: patch(GOLDEN_BYTES, AT.root + 31, 1), code: 'XS_STREAM_MALFORMED', offset: AT.root,
    message: 'NODE_DATA #3 at offset 0x60: non-zero padding byte 0x01 at body offset 23 (stream offset 0x7f)' },
  { rule: 'non-zero padding beyond len', bytes: v(2, record(LE, 5, nodeBody('/').build(), 22)).fill(9, 16 + 8 + 23, 16 + 8 + 24), code: 'XS_STREAM_MALFORMED', offset: 16,
    message: 'NODE_DATA #0 at offset 0x10: non-zero padding byte 0x09 at body offset 23 (stream offset 0x2f)' },
  { rule: 'non-zero socket conn-spec pad', code: 'XS_STREAM_MALFORMED', offset: 16,
    bytes: v(2, record(LE, 2, b().u32(1).u16(1).u16(0).i32(5).u32(7).u16(0).u16(0).u32(0).build())),
    message: 'CONNECTION_DATA #0 at offset 0x10: non-zero socket conn-spec padding byte 0x07 at body offset 12 (stream offset 0x24)' },
  // CONNECTION_DATA fields.
  { rule: 'conn-type not 0 or 1', bytes: patch(GOLDEN_BYTES, AT.conn + 12, 2), code: 'XS_STREAM_MALFORMED', offset: AT.conn,
    message: 'CONNECTION_DATA #1 at offset 0x20: conn-type 2 is neither 0 (ring) nor 1 (socket)' },
  { rule: 'unknown fields bits', bytes: patch(GOLDEN_BYTES, AT.conn + 14, 3), code: 'XS_STREAM_MALFORMED', offset: AT.conn,
    message: 'CONNECTION_DATA #1 at offset 0x20: fields 0x3 has unknown bits set (only 0x1, unique-id present, is defined)' },
  { rule: 'pending data past the record end', bytes: patch(GOLDEN_BYTES, AT.conn + 24, 16), code: 'XS_STREAM_MALFORMED', offset: AT.conn,
    message: 'CONNECTION_DATA #1 at offset 0x20: in-data-len 16 + out-data-len 0 run past the record end (body 32 bytes)' },
  { rule: 'out-resp-len beyond out-data', bytes: patch(GOLDEN_BYTES, AT.conn + 26, 1), code: 'XS_STREAM_MALFORMED', offset: AT.conn,
    message: 'CONNECTION_DATA #1 at offset 0x20: out-resp-len 1 exceeds out-data-len 0' },
  { rule: 'unique-id flagged but absent', code: 'XS_STREAM_MALFORMED', offset: 16,
    bytes: v(2, record(LE, 2, b().u32(1).u16(0).u16(1).u16(1).u16(0x7ff4).u32(7).u16(0).u16(0).u32(0).build())),
    message: 'CONNECTION_DATA #0 at offset 0x10: unique-id at body offset 24 runs past the record end (body 24 bytes)' },
  // Quota records.
  { rule: 'quota name not terminated', code: 'XS_STREAM_MALFORMED', offset: 16,
    bytes: v(2, record(LE, 6, b().u16(1).u16(0).u32(1000).text('nodesxxx').build())),
    message: 'GLOBAL_QUOTA_DATA #0 at offset 0x10: quota name #0 of 1 is not NUL-terminated before the record end' },
  { rule: 'quota values past the record end', code: 'XS_STREAM_MALFORMED', offset: 16,
    bytes: v(2, record(LE, 7, b().u16(1).u16(9).u32(0).u32(1).build())),
    message: 'DOMAIN_DATA #0 at offset 0x10: 9 quota values run past the record end (body 16 bytes)' },
  // Versions.
  { rule: 'WATCH_DATA_EXTENDED in a version-1 stream', bytes: v(1, record(LE, 8, watchExt('/a', 't', 1))), code: 'XS_STREAM_VERSION', offset: 16,
    message: 'WATCH_DATA_EXTENDED #0 at offset 0x10: WATCH_DATA_EXTENDED is valid only in version-2 streams (this stream is version 1)' },
  { rule: 'DOMAIN_DATA features in a version-1 stream', bytes: v(1, record(LE, 7, domainBody(5))), code: 'XS_STREAM_VERSION', offset: 16,
    message: 'DOMAIN_DATA #0 at offset 0x10: features 0x5 in a version-1 stream (the field is valid from version 2 and must be 0 before)' },
  // WATCH_DATA_EXTENDED as written by C master.
  ...[['a', 't'], ['/a', 'tk'], ['/local/domain/1/device', 'token-17']].map(([path, token]): Row => ({
    rule: `C master WATCH_DATA_EXTENDED layout (${path}, ${token})`,
    bytes: Buffer.concat([header(2, 0), cMasterWatchExt(path as string, token as string), END_RECORD(LE)]),
    code: 'XS_STREAM_C_WATCH_EXT', offset: 16,
    message: 'WATCH_DATA_EXTENDED #0 at offset 0x10: path and token are at offset 8 with no depth field, the layout C xenstored master '
      + 'writes by mistake (known bug: depth omitted, strings at 8 instead of 12, len 8 bytes too long for some lengths); '
      + 'refusing it because the depth is lost and the following records may be misaligned',
  })),
  { rule: 'non-zero WATCH_DATA_EXTENDED pad', code: 'XS_STREAM_MALFORMED', offset: 16,
    bytes: v(2, record(LE, 8, patch(watchExt('/abc', 'tok', 2), 10, 1))),
    message: 'WATCH_DATA_EXTENDED #0 at offset 0x10: non-zero pad byte 0x01 at body offset 10 (stream offset 0x22)' },
];

describe('stream reader errors', () => {
  it.each(rows)('$rule', ({ bytes, code, offset, message }) => {
    let caught: unknown;
    try {
      decodeStream(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StreamError);
    const err = caught as StreamError;
    expect(err.message).toBe(message);
    expect(err.offset).toBe(offset);
    expect(err.code).toBe(code);
  });

  it('locates errors by record index and type name', () => {
    const err = (() => {
      try {
        decodeStream(patch(GOLDEN_BYTES, AT.local + 16, 40));
      } catch (e) {
        return e as StreamError;
      }
      throw new Error('no error');
    })();
    expect(err).toMatchObject({ recordIndex: 4, recordType: 'NODE_DATA', reason: 'path-len 40 runs past the record end (body 32 bytes)' });
  });
});

describe('stream reader tolerance', () => {
  it('reads records whose len excludes the padding', () => {
    const bytes = v(2, record(LE, 5, nodeBody('/').build(), 22), record(LE, 1, b().i32(-1).i32(9).build()));
    expect(decodeStream(bytes).records.map((d) => [d.record.kind, d.offset])).toEqual([['node', 16], ['global', 48]]);
  });

  it('ignores garbage padding in GLOBAL_QUOTA_DATA and DOMAIN_DATA (C master leaves it uninitialised)', () => {
    const quota = b().u16(1).u16(0).u32(1000).cstr('nodes').u8(0xaa, 0xbb).build();
    const domain = b().u16(1).u16(1).u32(0).u32(20).cstr('nodes').u8(0xde, 0xad, 0xbe, 0xef, 1, 2).build();
    const records = decodeStream(v(1, record(LE, 6, quota), record(LE, 7, domain))).records.map((d) => d.record);
    expect(records).toStrictEqual([
      { kind: 'globalQuota', domainQuotas: [{ name: 'nodes', value: 1000 }], globalQuotas: [] },
      { kind: 'domain', domid: 1, features: 0, quotas: [{ name: 'nodes', value: 20 }] },
    ]);
  });

  it('returns unknown record types for the applier to skip', () => {
    const bytes = v(1, record(LE, 0x42, b().u32(0xdeadbeef).build()), record(LE, 4, b().u32(1).u32(2).build()));
    expect(decodeStream(bytes).records.map((d) => d.record)).toStrictEqual([
      { kind: 'unknown', type: 0x42, body: b().u32(0xdeadbeef).zeros(4).build() },
      { kind: 'transaction', connId: 1, txId: 2 },
    ]);
  });

  it('reads WATCH_DATA_EXTENDED in the specified layout, 0xffff as unlimited', () => {
    const bytes = v(2, record(LE, 8, watchExt('/a', 't', 3)), record(LE, 8, watchExt('b', '', 0xffff)));
    expect(decodeStream(bytes).records.map((d) => d.record)).toStrictEqual([
      { kind: 'watch', connId: 1, path: '/a', token: 't', depth: 3 },
      { kind: 'watch', connId: 1, path: 'b', token: '', depth: 'unlimited' },
    ]);
  });

  it('reads a version-1 stream of the golden records', () => {
    const bytes = patch(GOLDEN_BYTES, 11, 1);
    expect(decodeStream(bytes)).toMatchObject({ version: 1, bigEndian: false });
    expect(decodeStream(bytes).records.map((d) => d.record)).toStrictEqual(GOLDEN_RECORDS);
  });
});
