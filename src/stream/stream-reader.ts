import { BodyReader, hexByte, recordSite } from './body-reader.js';
import {
  alignRecord, CONN_FIELD_UNIQUE_ID, ConnectionLayout, ConnTypeCode, DomainLayout, FLAG_BIG_ENDIAN,
  GlobalLayout, GlobalQuotaLayout, NODE_ACCESS_MASK, NodeLayout, PERM_CHARS, PERM_FLAG_STALE, PermLayout,
  QUOTA_VALUE_SIZE, RecordHeaderLayout, RecordType, STREAM_IDENT, STREAM_VERSIONS, StreamHeaderLayout,
  TransactionLayout, WATCH_DEPTH_UNLIMITED, WatchExtendedLayout, WatchLayout,
  type ConnectionRecord, type DecodedRecord, type NodePerm, type PermChar, type QuotaEntry, type StreamFormat,
  type StreamRecord, type StreamVersion,
} from './records.js';
import { StreamError } from './stream-error.js';

/*
 * Reading rules (migration-stream.md §1, §6, §7):
 *  - The header is big-endian: ident "xenstore", version 1 or 2, flags with
 *    only bit 0 (big-endian body) allowed.
 *  - Records are read until END. A record occupies `len` bytes and the next
 *    one starts at the following 8-byte boundary, so writers whose `len`
 *    excludes the padding are read as well as C's (which includes it).
 *  - `len` may exceed a record's content only by padding (< 8 bytes).
 *  - Padding and reserved fields must be zero, except the padding of
 *    GLOBAL_QUOTA_DATA and DOMAIN_DATA, which C xenstored master fills from an
 *    uninitialised buffer (§5.3 #2) and which is therefore ignored.
 *  - Unknown record types are returned as `unknown` records for the applier
 *    to skip; version-2-only content in a version-1 stream is refused.
 *  - END must have len 0 and be the last thing in the buffer: trailing bytes
 *    mean the stream was mis-framed or concatenated, so they are an error.
 * Anything else malformed throws StreamError naming record, offset and rule.
 */

/** Records whose padding is ignored because C master leaves it uninitialised. */
const PAD_MAY_BE_GARBAGE = new Set<number>([RecordType.GLOBAL_QUOTA_DATA, RecordType.DOMAIN_DATA]);

function decodeGlobal(r: BodyReader): StreamRecord {
  r.fixed(GlobalLayout.size);
  r.finish(GlobalLayout.size);
  return { kind: 'global', socketFd: r.i32(GlobalLayout.socketFd), evtchnFd: r.i32(GlobalLayout.evtchnFd) };
}

function decodeConnection(r: BodyReader): StreamRecord {
  const L = ConnectionLayout;
  r.fixed(L.size);
  const typeCode = r.u16(L.connType);
  const fields = r.u16(L.fields);
  if (typeCode !== ConnTypeCode.ring && typeCode !== ConnTypeCode.socket) {
    r.fail(`conn-type ${typeCode} is neither 0 (ring) nor 1 (socket)`);
  }
  if ((fields & ~CONN_FIELD_UNIQUE_ID) !== 0) {
    r.fail(`fields 0x${fields.toString(16)} has unknown bits set (only 0x1, unique-id present, is defined)`);
  }
  const inLen = r.u16(L.inDataLen);
  const respLen = r.u16(L.outRespLen);
  const outLen = r.u32(L.outDataLen);
  const dataEnd = L.size + inLen + outLen;
  if (dataEnd > r.len) {
    r.fail(`in-data-len ${inLen} + out-data-len ${outLen} run past the record end (body ${r.len} bytes)`);
  }
  if (respLen > outLen) r.fail(`out-resp-len ${respLen} exceeds out-data-len ${outLen}`);
  if (typeCode === ConnTypeCode.socket) r.zeros(L.socketPad, L.inDataLen, 'socket conn-spec padding');
  const common = {
    kind: 'connection' as const,
    connId: r.u32(L.connId),
    inData: r.bytes(L.size, inLen),
    outRespLen: respLen,
    outData: r.bytes(L.size + inLen, outLen),
  };
  const record: ConnectionRecord = typeCode === ConnTypeCode.ring
    ? { ...common, connType: 'ring', domid: r.u16(L.domid), tdomid: r.u16(L.tdomid), evtchn: r.u32(L.evtchn) }
    : { ...common, connType: 'socket', socketFd: r.i32(L.socketFd) };
  let contentEnd = dataEnd;
  if (fields & CONN_FIELD_UNIQUE_ID) {
    const idAt = alignRecord(dataEnd);
    if (idAt + L.uniqueIdSize > r.len) {
      r.fail(`unique-id at body offset ${idAt} runs past the record end (body ${r.len} bytes)`);
    }
    r.zeros(dataEnd, idAt, 'padding');
    record.uniqueId = r.u64(idAt);
    contentEnd = idAt + L.uniqueIdSize;
  }
  r.finish(contentEnd);
  return record;
}

function decodeWatch(r: BodyReader): StreamRecord {
  const L = WatchLayout;
  r.fixed(L.size);
  const pathLen = r.u16(L.pathLen);
  const tokenLen = r.u16(L.tokenLen);
  const path = r.string(L.size, pathLen, 'path');
  const token = r.string(L.size + pathLen, tokenLen, 'token');
  r.finish(L.size + pathLen + tokenLen);
  return { kind: 'watch', connId: r.u32(L.connId), path, token };
}

/**
 * WATCH_DATA_EXTENDED is read as the specification lays it out: conn-id,
 * path and token lengths, a 16-bit depth at offset 8, two pad bytes, and the
 * path and token from offset 12. C xenstored master writes this record
 * wrongly: it sizes `len` for the 12-byte fixed part but writes only the
 * first 8 bytes, so the depth is missing, the strings start at offset 8 and,
 * for some string lengths, every later record is shifted by 8 bytes
 * (migration-stream.md §5.3 #1). Such a record is detected — the bytes at
 * offset 12 are not a valid path and token while those at offset 8 are — and
 * refused with an error that names this known C master bug, rather than
 * guessed at: the watch's depth is lost in such a stream, and the bytes that
 * follow cannot be trusted.
 */
function decodeWatchExtended(r: BodyReader): StreamRecord {
  const L = WatchExtendedLayout;
  if (r.version < 2) {
    r.fail(`WATCH_DATA_EXTENDED is valid only in version-2 streams (this stream is version ${r.version})`, 'XS_STREAM_VERSION');
  }
  r.fixed(L.size);
  const pathLen = r.u16(L.pathLen);
  const tokenLen = r.u16(L.tokenLen);
  const specLayout = r.u16(L.pad) === 0 && r.isString(L.size, pathLen) && r.isString(L.size + pathLen, tokenLen);
  const cMasterLayout = r.isString(WatchLayout.size, pathLen) && r.isString(WatchLayout.size + pathLen, tokenLen);
  if (!specLayout && cMasterLayout) {
    r.fail(
      'path and token are at offset 8 with no depth field, the layout C xenstored master writes by mistake '
        + '(known bug: depth omitted, strings at 8 instead of 12, len 8 bytes too long for some lengths); '
        + 'refusing it because the depth is lost and the following records may be misaligned',
      'XS_STREAM_C_WATCH_EXT',
    );
  }
  r.zeros(L.pad, L.size, 'pad');
  const path = r.string(L.size, pathLen, 'path');
  const token = r.string(L.size + pathLen, tokenLen, 'token');
  r.finish(L.size + pathLen + tokenLen);
  const depth = r.u16(L.depth);
  return {
    kind: 'watch', connId: r.u32(L.connId), path, token,
    depth: depth === WATCH_DEPTH_UNLIMITED ? 'unlimited' : depth,
  };
}

function decodeTransaction(r: BodyReader): StreamRecord {
  r.fixed(TransactionLayout.size);
  r.finish(TransactionLayout.size);
  return { kind: 'transaction', connId: r.u32(TransactionLayout.connId), txId: r.u32(TransactionLayout.txId) };
}

/** Permission letter by its byte value (an array index is cheaper than a Map lookup here). */
const PERM_BY_CODE: (PermChar | undefined)[] = [];
for (const c of PERM_CHARS) PERM_BY_CODE[c.charCodeAt(0)] = c;

function decodeNode(r: BodyReader): StreamRecord {
  const L = NodeLayout;
  r.fixed(L.size);
  const pathLen = r.u16(L.pathLen);
  const valueLen = r.u16(L.valueLen);
  const access = r.u16(L.access);
  const permCount = r.u16(L.permCount);
  if ((access & ~NODE_ACCESS_MASK) !== 0) {
    r.fail(`access 0x${access.toString(16)} has reserved bits set (only 0x1 read and 0x2 written exist)`);
  }
  const pathAt = L.size + permCount * PermLayout.size;
  if (pathAt > r.len) r.fail(`perm-count ${permCount} runs past the record end (body ${r.len} bytes)`);
  const perms: NodePerm[] = [];
  for (let i = 0, at = L.size; i < permCount; i++, at += PermLayout.size) {
    const code = r.buf[r.start + at + PermLayout.perm] as number;
    const flags = r.buf[r.start + at + PermLayout.flags] as number;
    const perm = PERM_BY_CODE[code];
    if (perm === undefined) r.fail(`perm #${i} has perm byte ${hexByte(code)}, not one of 'n', 'r', 'w', 'b'`);
    if ((flags & ~PERM_FLAG_STALE) !== 0) r.fail(`perm #${i} has reserved flag bits set (flags ${hexByte(flags)})`);
    perms.push({ perm, stale: flags === PERM_FLAG_STALE, domid: r.u16(at + PermLayout.domid) });
  }
  const path = r.string(pathAt, pathLen, 'path');
  const valueAt = pathAt + pathLen;
  if (valueAt + valueLen > r.len) r.fail(`value-len ${valueLen} runs past the record end (body ${r.len} bytes)`);
  r.finish(valueAt + valueLen);
  return {
    kind: 'node', connId: r.u32(L.connId), txId: r.u32(L.txId), path,
    value: r.bytes(valueAt, valueLen), access, perms,
  };
}

/** The u32 values at `at` followed by as many names; the record's padding is ignored. */
function decodeQuotas(r: BodyReader, at: number, count: number): QuotaEntry[] {
  const namesAt = at + count * QUOTA_VALUE_SIZE;
  if (namesAt > r.len) r.fail(`${count} quota values run past the record end (body ${r.len} bytes)`);
  const { names, end } = r.names(namesAt, count);
  r.finish(end, true);
  return names.map((name, i) => ({ name, value: r.u32(at + i * QUOTA_VALUE_SIZE) }));
}

function decodeGlobalQuota(r: BodyReader): StreamRecord {
  const L = GlobalQuotaLayout;
  r.fixed(L.size);
  const domainCount = r.u16(L.domainCount);
  const all = decodeQuotas(r, L.size, domainCount + r.u16(L.globalCount));
  return { kind: 'globalQuota', domainQuotas: all.slice(0, domainCount), globalQuotas: all.slice(domainCount) };
}

function decodeDomain(r: BodyReader): StreamRecord {
  const L = DomainLayout;
  r.fixed(L.size);
  const features = r.u32(L.features);
  if (features !== 0 && r.version < 2) {
    r.fail(`features 0x${features.toString(16)} in a version-1 stream (the field is valid from version 2 and must be 0 before)`, 'XS_STREAM_VERSION');
  }
  const quotas = decodeQuotas(r, L.size, r.u16(L.quotaCount));
  return { kind: 'domain', domid: r.u16(L.domid), features, quotas };
}

const DECODERS = new Map<number, (r: BodyReader) => StreamRecord>([
  [RecordType.GLOBAL_DATA, decodeGlobal],
  [RecordType.CONNECTION_DATA, decodeConnection],
  [RecordType.WATCH_DATA, decodeWatch],
  [RecordType.TRANSACTION_DATA, decodeTransaction],
  [RecordType.NODE_DATA, decodeNode],
  [RecordType.GLOBAL_QUOTA_DATA, decodeGlobalQuota],
  [RecordType.DOMAIN_DATA, decodeDomain],
  [RecordType.WATCH_DATA_EXTENDED, decodeWatchExtended],
]);

/** Reads and checks the 16-byte header. */
export function readHeader(buf: Buffer): StreamFormat {
  const H = StreamHeaderLayout;
  const fail = (offset: number, reason: string): never => {
    throw new StreamError('XS_STREAM_HEADER', { offset }, reason);
  };
  const identBytes = buf.subarray(0, Math.min(buf.length, STREAM_IDENT.length));
  if (!identBytes.equals(STREAM_IDENT.subarray(0, identBytes.length))) {
    fail(H.ident, `ident is ${JSON.stringify(identBytes.toString('latin1'))}, not "xenstore"`);
  }
  if (buf.length < H.size) fail(0, `stream is ${buf.length} bytes, shorter than the ${H.size}-byte header`);
  const version = buf.readUInt32BE(H.version);
  if (!(STREAM_VERSIONS as readonly number[]).includes(version)) {
    fail(H.version, `version ${version} is not supported (expected 1 or 2)`);
  }
  const flags = buf.readUInt32BE(H.flags);
  if ((flags & ~FLAG_BIG_ENDIAN) !== 0) {
    fail(H.flags, `flags 0x${flags.toString(16)} has reserved bits set (only bit 0, big-endian, is defined)`);
  }
  return { version: version as StreamVersion, bigEndian: (flags & FLAG_BIG_ENDIAN) !== 0 };
}

/** Yields the records of a stream in order (END excluded); throws StreamError at the first problem. */
export function* iterateStream(buf: Buffer): Generator<DecodedRecord, void, undefined> {
  const { version, bigEndian } = readHeader(buf);
  const le = !bigEndian;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let pos: number = StreamHeaderLayout.size;
  for (let index = 0; ; index++) {
    if (buf.length - pos < RecordHeaderLayout.size) {
      const offset = Math.min(pos, buf.length);
      throw new StreamError('XS_STREAM_TRUNCATED', { offset, recordIndex: index },
        offset === buf.length
          ? 'stream ends without an END record'
          : `only ${buf.length - pos} of the 8 record-header bytes are present (no END record)`);
    }
    const type = view.getUint32(pos + RecordHeaderLayout.type, le);
    const len = view.getUint32(pos + RecordHeaderLayout.len, le);
    const start = pos + RecordHeaderLayout.size;
    if (len > buf.length - start) {
      throw new StreamError('XS_STREAM_TRUNCATED', recordSite(pos, index, type),
        `len ${len} runs past the end of the stream (${buf.length - start} bytes left)`);
    }
    if (type === RecordType.END) {
      const site = recordSite(pos, index, type);
      if (len !== 0) throw new StreamError('XS_STREAM_MALFORMED', site, `END has len ${len}; it must be 0`);
      if (start < buf.length) {
        throw new StreamError('XS_STREAM_TRAILING', site, `${buf.length - start} bytes follow the END record`);
      }
      return;
    }
    const r = new BodyReader(buf, view, start, len, le, version, pos, index, type);
    const decode = DECODERS.get(type);
    const record: StreamRecord = decode ? decode(r) : { kind: 'unknown', type, body: r.bytes(0, len) };
    // Skip to the next record boundary; those bytes are padding too.
    const next = alignRecord(start + len);
    if (!PAD_MAY_BE_GARBAGE.has(type)) r.zeros(len, Math.min(next, buf.length) - start, 'padding');
    yield { record, offset: pos, index };
    pos = next;
  }
}

/** The decoded stream. */
export interface DecodedStream extends StreamFormat {
  records: DecodedRecord[];
}

/** Decodes a whole stream; throws StreamError at the first problem. */
export function decodeStream(buf: Buffer): DecodedStream {
  return { ...readHeader(buf), records: [...iterateStream(buf)] };
}
