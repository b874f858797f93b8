import {
  alignRecord, CONN_FIELD_UNIQUE_ID, ConnectionLayout, ConnTypeCode, DomainLayout, FLAG_BIG_ENDIAN,
  GlobalLayout, GlobalQuotaLayout, NODE_ACCESS_MASK, NodeLayout, PERM_CHARS, PERM_FLAG_STALE, PermLayout, QUOTA_VALUE_SIZE,
  RecordHeaderLayout, RecordType, recordTypeName, recordTypeOf, STREAM_IDENT, STREAM_VERSIONS,
  StreamHeaderLayout, TransactionLayout, WATCH_DEPTH_UNLIMITED, WatchExtendedLayout, WatchLayout,
  type ConnectionRecord, type DomainRecord, type GlobalQuotaRecord, type NodeRecord, type QuotaEntry,
  type StreamFormat, type StreamRecord, type WatchRecord,
} from './records.js';
import { StreamEncodeError } from './stream-error.js';

/*
 * Writing rules (migration-stream.md §1, §7): header ident, version and flags
 * big-endian; records in the chosen byte order; every `len` rounded up to 8
 * with zero padding, so records start on 8-byte boundaries; END last.
 * Nothing is dropped or converted silently: a field that does not fit its
 * on-wire width, or content version 1 cannot carry (a watch with a depth,
 * non-zero DOMAIN_DATA features), throws StreamEncodeError. downgradeToV1
 * is the explicit, lossless-only way to turn version-2 records into version 1.
 */

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
/** Characters a latin1 string field cannot carry: NUL ends it, the rest do not fit a byte. */
const NOT_LATIN1_OR_NUL = /[\0\u0100-\uffff]/;

/** Bytes of the NUL-terminated names of a quota list. */
function namesLength(quotas: readonly QuotaEntry[]): number {
  let length = 0;
  for (const q of quotas) length += q.name.length + 1;
  return length;
}

/** Length of a record's content — its body before padding — as the layouts in records.ts lay it out. */
function contentLength(record: StreamRecord): number {
  switch (record.kind) {
    case 'global': return GlobalLayout.size;
    case 'connection': {
      const dataEnd = ConnectionLayout.size + record.inData.length + record.outData.length;
      return record.uniqueId === undefined ? dataEnd : alignRecord(dataEnd) + ConnectionLayout.uniqueIdSize;
    }
    case 'watch':
      return (record.depth === undefined ? WatchLayout.size : WatchExtendedLayout.size)
        + record.path.length + 1 + record.token.length + 1;
    case 'transaction': return TransactionLayout.size;
    case 'node':
      return NodeLayout.size + record.perms.length * PermLayout.size + record.path.length + 1 + record.value.length;
    case 'globalQuota': {
      const count = record.domainQuotas.length + record.globalQuotas.length;
      return GlobalQuotaLayout.size + count * QUOTA_VALUE_SIZE
        + namesLength(record.domainQuotas) + namesLength(record.globalQuotas);
    }
    case 'domain':
      return DomainLayout.size + record.quotas.length * QUOTA_VALUE_SIZE + namesLength(record.quotas);
    case 'unknown': return record.body.length;
  }
}

/**
 * Appends records to one growable buffer, so a million records cost a few
 * reallocations rather than a million concats. The buffer is zero-filled
 * when allocated and written strictly forward, so every padding byte and
 * reserved field is zero without being written.
 */
export class StreamWriter {
  private buf: Buffer;
  /** Integer writes go through a DataView: much cheaper per call than Buffer's write methods. */
  private view: DataView;
  /** Start of the current record's body once its header is written. */
  private pos: number = StreamHeaderLayout.size;
  private count = 0;
  private done = false;
  private readonly le: boolean;
  /** Type of the record being written, for error messages. */
  private type = 0;

  constructor(readonly format: StreamFormat, initialCapacity = 64 * 1024) {
    if (!STREAM_VERSIONS.includes(format.version)) {
      throw new RangeError(`stream version ${String(format.version)} is not 1 or 2`);
    }
    this.le = !format.bigEndian;
    this.buf = Buffer.alloc(Math.max(initialCapacity, StreamHeaderLayout.size));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    STREAM_IDENT.copy(this.buf, StreamHeaderLayout.ident);
    // The header is big-endian whatever the body's byte order.
    this.buf.writeUInt32BE(format.version, StreamHeaderLayout.version);
    this.buf.writeUInt32BE(format.bigEndian ? FLAG_BIG_ENDIAN : 0, StreamHeaderLayout.flags);
  }

  /** Appends one record. Throws StreamEncodeError if it cannot be written in this format. */
  write(record: StreamRecord): this {
    if (this.done) throw new Error('StreamWriter: write after finish');
    this.type = recordTypeOf(record);
    const start = this.pos;
    const end = start + RecordHeaderLayout.size + alignRecord(contentLength(record));
    this.reserve(end);
    this.u32raw(this.type, start + RecordHeaderLayout.type);
    this.u32raw(end - start - RecordHeaderLayout.size, start + RecordHeaderLayout.len);
    this.pos = start + RecordHeaderLayout.size;
    try {
      this.body(record);
    } catch (err) {
      // Undo the partial record so the writer stays usable and the tail stays zero.
      this.buf.fill(0, start, end);
      this.pos = start;
      throw err;
    }
    this.pos = end;
    this.count++;
    return this;
  }

  /** The bytes written so far (a view, valid until the next write). */
  written(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /**
   * Appends END and returns the stream, a view on the writer's buffer (exact
   * when sized up front, as encodeStream does). The writer accepts nothing afterwards.
   */
  finish(): Buffer {
    if (!this.done) {
      this.reserve(this.pos + RecordHeaderLayout.size);
      this.u32raw(RecordType.END, this.pos + RecordHeaderLayout.type);
      this.pos += RecordHeaderLayout.size; // len 0 is already there
      this.done = true;
    }
    return this.buf.subarray(0, this.pos);
  }

  private reserve(end: number): void {
    if (end <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(end, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }

  private body(record: StreamRecord): void {
    switch (record.kind) {
      case 'global':
        this.i32(record.socketFd, GlobalLayout.socketFd, 'socket-fd');
        this.i32(record.evtchnFd, GlobalLayout.evtchnFd, 'evtchn-fd');
        break;
      case 'connection': this.connection(record); break;
      case 'watch': this.watch(record); break;
      case 'transaction':
        this.u32(record.connId, TransactionLayout.connId, 'conn-id');
        this.u32(record.txId, TransactionLayout.txId, 'tx-id');
        break;
      case 'node': this.node(record); break;
      case 'globalQuota': this.globalQuota(record); break;
      case 'domain': this.domain(record); break;
      case 'unknown':
        if (!Number.isInteger(record.type) || record.type <= RecordType.WATCH_DATA_EXTENDED || record.type > U32_MAX) {
          this.fail(`type ${record.type} is not an unknown record type (0..8 are known; use their own kinds)`);
        }
        this.buf.set(record.body, this.pos);
        break;
    }
  }

  private connection(record: ConnectionRecord): void {
    const L = ConnectionLayout;
    const { inData, outData, outRespLen, uniqueId } = record;
    if (inData.length > U16_MAX) this.fail(`in-data is ${inData.length} bytes, more than in-data-len can count (65535)`);
    if (outData.length > U32_MAX) this.fail(`out-data is ${outData.length} bytes, more than out-data-len can count`);
    if (!Number.isInteger(outRespLen) || outRespLen < 0 || outRespLen > Math.min(U16_MAX, outData.length)) {
      this.fail(`out-resp-len ${outRespLen} must be an integer from 0 to the out-data length ${outData.length} (at most 65535)`);
    }
    this.u32(record.connId, L.connId, 'conn-id');
    this.u16(ConnTypeCode[record.connType], L.connType, 'conn-type');
    this.u16(uniqueId === undefined ? 0 : CONN_FIELD_UNIQUE_ID, L.fields, 'fields');
    if (record.connType === 'ring') {
      this.u16(record.domid, L.domid, 'domid');
      this.u16(record.tdomid, L.tdomid, 'tdomid');
      this.u32(record.evtchn, L.evtchn, 'evtchn');
    } else {
      this.i32(record.socketFd, L.socketFd, 'socket-fd');
    }
    this.u16(inData.length, L.inDataLen, 'in-data-len');
    this.u16(outRespLen, L.outRespLen, 'out-resp-len');
    this.u32(outData.length, L.outDataLen, 'out-data-len');
    this.buf.set(inData, this.pos + L.size);
    this.buf.set(outData, this.pos + L.size + inData.length);
    if (uniqueId !== undefined) {
      if (uniqueId < 0n || uniqueId > U64_MAX) this.fail(`unique-id ${uniqueId} does not fit in 64 bits`);
      const at = alignRecord(L.size + inData.length + outData.length);
      this.view.setBigUint64(this.pos + at, uniqueId, this.le);
    }
  }

  private watch(record: WatchRecord): void {
    const { depth } = record;
    if (depth !== undefined && this.format.version < 2) {
      this.fail('a watch with a depth needs a version-2 stream (downgradeToV1 converts unlimited depths)');
    }
    if (typeof depth === 'number' && !(Number.isInteger(depth) && depth >= 0 && depth < WATCH_DEPTH_UNLIMITED)) {
      this.fail(`depth ${depth} must be an integer 0..65534 (write 'unlimited' for no limit)`);
    }
    const L = depth === undefined ? WatchLayout : WatchExtendedLayout;
    const pathLen = this.stringLength(record.path, 'path');
    const tokenLen = this.stringLength(record.token, 'token');
    this.u32(record.connId, L.connId, 'conn-id');
    this.u16(pathLen, L.pathLen, 'path-len');
    this.u16(tokenLen, L.tokenLen, 'token-len');
    if (depth !== undefined) {
      this.u16(depth === 'unlimited' ? WATCH_DEPTH_UNLIMITED : depth, WatchExtendedLayout.depth, 'depth');
    }
    this.string(record.path, L.size, 'path');
    this.string(record.token, L.size + pathLen, 'token');
  }

  private node(record: NodeRecord): void {
    const L = NodeLayout;
    const { perms, value } = record;
    const pathLen = this.stringLength(record.path, 'path');
    if (value.length > U16_MAX) this.fail(`value is ${value.length} bytes, more than value-len can count (65535)`);
    if (perms.length > U16_MAX) this.fail(`${perms.length} permissions, more than perm-count can count (65535)`);
    if (!Number.isInteger(record.access) || (record.access & ~NODE_ACCESS_MASK) !== 0) {
      this.fail(`access ${record.access} has bits other than read (1) and written (2)`);
    }
    this.u32(record.connId, L.connId, 'conn-id');
    this.u32(record.txId, L.txId, 'tx-id');
    this.u16(pathLen, L.pathLen, 'path-len');
    this.u16(value.length, L.valueLen, 'value-len');
    this.u16(record.access, L.access, 'access');
    this.u16(perms.length, L.permCount, 'perm-count');
    let at = L.size;
    for (const p of perms) {
      if (!PERM_CHARS.includes(p.perm)) this.fail(`perm ${JSON.stringify(p.perm)} is not one of n, r, w, b`);
      this.buf[this.pos + at + PermLayout.perm] = p.perm.charCodeAt(0);
      this.buf[this.pos + at + PermLayout.flags] = p.stale ? PERM_FLAG_STALE : 0;
      this.u16(p.domid, at + PermLayout.domid, 'perm domid');
      at += PermLayout.size;
    }
    this.string(record.path, at, 'path');
    this.buf.set(value, this.pos + at + pathLen);
  }

  private globalQuota(record: GlobalQuotaRecord): void {
    const L = GlobalQuotaLayout;
    const { domainQuotas, globalQuotas } = record;
    if (domainQuotas.length > U16_MAX) this.fail(`${domainQuotas.length} domain quotas, more than n-dom-quota can count`);
    if (globalQuotas.length > U16_MAX) this.fail(`${globalQuotas.length} global quotas, more than n-glob-quota can count`);
    this.u16(domainQuotas.length, L.domainCount, 'n-dom-quota');
    this.u16(globalQuotas.length, L.globalCount, 'n-glob-quota');
    this.quotas(L.size, [...domainQuotas, ...globalQuotas]);
  }

  private domain(record: DomainRecord): void {
    const L = DomainLayout;
    if (record.quotas.length > U16_MAX) this.fail(`${record.quotas.length} quotas, more than n-quota can count`);
    if (record.features !== 0 && this.format.version < 2) {
      this.fail(`features 0x${record.features.toString(16)} cannot be carried by a version-1 stream (must be 0)`);
    }
    this.u16(record.domid, L.domid, 'domain-id');
    this.u16(record.quotas.length, L.quotaCount, 'n-quota');
    this.u32(record.features, L.features, 'features');
    this.quotas(L.size, record.quotas);
  }

  /** The u32 values at body offset `at`, then the NUL-terminated names in the same order. */
  private quotas(at: number, quotas: readonly QuotaEntry[]): void {
    let nameAt = at + quotas.length * QUOTA_VALUE_SIZE;
    quotas.forEach((q, i) => {
      this.u32(q.value, at + i * QUOTA_VALUE_SIZE, `quota ${JSON.stringify(q.name)}`);
      this.string(q.name, nameAt, 'quota name');
      nameAt += q.name.length + 1;
    });
  }

  private fail(reason: string): never {
    throw new StreamEncodeError(this.count, recordTypeName(this.type), reason);
  }

  /** Bytes a string field occupies, NUL included. */
  private stringLength(s: string, field: string): number {
    if (s.length + 1 > U16_MAX) this.fail(`${field} is ${s.length} characters, too long for a u16 length`);
    return s.length + 1;
  }

  /**
   * Writes `s` as latin1 at body offset `at`; the NUL after it is already
   * there (zero-filled buffer). Short strings — nearly all of them — are
   * copied by hand, checking each character as it goes.
   */
  private string(s: string, at: number, field: string): void {
    const base = this.pos + at;
    if (s.length > 64) {
      if (NOT_LATIN1_OR_NUL.test(s)) this.badString(s, field);
      this.buf.write(s, base, 'latin1');
      return;
    }
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0 || c > 0xff) this.badString(s, field);
      this.buf[base + i] = c;
    }
  }

  private badString(s: string, field: string): never {
    return this.fail(`${field} ${JSON.stringify(s)} contains NUL or a character above U+00FF`);
  }

  /* Field writers: `at` is relative to the body start; ranges are checked for a readable error. */
  private u16(v: number, at: number, field: string): void {
    if (!(Number.isInteger(v) && v >= 0 && v <= U16_MAX)) this.fail(`${field} ${v} is not a u16`);
    this.view.setUint16(this.pos + at, v, this.le);
  }

  private u32(v: number, at: number, field: string): void {
    if (!(Number.isInteger(v) && v >= 0 && v <= U32_MAX)) this.fail(`${field} ${v} is not a u32`);
    this.view.setUint32(this.pos + at, v, this.le);
  }

  private i32(v: number, at: number, field: string): void {
    if (!(Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff)) this.fail(`${field} ${v} is not an i32`);
    this.view.setInt32(this.pos + at, v, this.le);
  }

  /** Writes a u32 already known to be in range, at an absolute offset. */
  private u32raw(v: number, abs: number): void {
    this.view.setUint32(abs, v, this.le);
  }
}

/**
 * Encodes a whole stream: header, `records` in order, END. An array is sized
 * first so the output is allocated once, at its exact length.
 */
export function encodeStream(format: StreamFormat, records: Iterable<StreamRecord>): Buffer {
  let capacity: number | undefined;
  if (Array.isArray(records)) {
    capacity = StreamHeaderLayout.size + RecordHeaderLayout.size;
    for (const r of records as StreamRecord[]) capacity += RecordHeaderLayout.size + alignRecord(contentLength(r));
  }
  const writer = new StreamWriter(format, capacity);
  for (const record of records) writer.write(record);
  return writer.finish();
}

/**
 * Rewrites records so that a version-1 stream can carry them without losing
 * anything: a watch of unlimited depth becomes a plain WATCH_DATA. Throws
 * StreamEncodeError for what version 1 cannot express — a watch with a depth
 * limit, or DOMAIN_DATA with non-zero features — instead of dropping it.
 */
export function downgradeToV1(records: readonly StreamRecord[]): StreamRecord[] {
  return records.map((record, index) => {
    if (record.kind === 'watch' && record.depth !== undefined) {
      if (record.depth !== 'unlimited') {
        throw new StreamEncodeError(index, 'WATCH_DATA_EXTENDED',
          `depth ${record.depth} cannot be expressed in version 1 (WATCH_DATA has no depth)`);
      }
      const { depth: _unlimited, ...plain } = record;
      return plain;
    }
    if (record.kind === 'domain' && record.features !== 0) {
      throw new StreamEncodeError(index, 'DOMAIN_DATA',
        `features 0x${record.features.toString(16)} would be lost in version 1`);
    }
    return record;
  });
}
