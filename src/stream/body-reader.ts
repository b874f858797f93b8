import { alignRecord, recordTypeName, type StreamVersion } from './records.js';
import { StreamError, type StreamErrorCode, type StreamSite } from './stream-error.js';

/** Where a record starts, its index and type name, for an error. */
export function recordSite(offset: number, recordIndex: number, type: number): StreamSite {
  return { offset, recordIndex, recordType: recordTypeName(type) };
}

export function hexByte(b: number | undefined): string {
  return `0x${(b ?? 0).toString(16).padStart(2, '0')}`;
}

/**
 * Bounds-checked reads inside one record body of a stream being decoded.
 * Every failure throws a StreamError naming the record, its offset and the
 * rule broken; offsets passed to the methods are relative to the body.
 */
export class BodyReader {
  constructor(
    readonly buf: Buffer,
    /** The same bytes, for integer reads (cheaper per call than Buffer's read methods). */
    readonly view: DataView,
    /** Absolute offset of the body. */
    readonly start: number,
    readonly len: number,
    readonly le: boolean,
    readonly version: StreamVersion,
    /** Where the record header starts, its index and type: built into a site only on failure. */
    readonly offset: number,
    readonly index: number,
    readonly type: number,
  ) {}

  fail(reason: string, code: StreamErrorCode = 'XS_STREAM_MALFORMED'): never {
    throw new StreamError(code, recordSite(this.offset, this.index, this.type), reason);
  }

  fixed(size: number): void {
    if (this.len < size) this.fail(`body is ${this.len} bytes, shorter than the ${size}-byte fixed part`);
  }

  u16(at: number): number {
    return this.view.getUint16(this.start + at, this.le);
  }

  u32(at: number): number {
    return this.view.getUint32(this.start + at, this.le);
  }

  i32(at: number): number {
    return this.view.getInt32(this.start + at, this.le);
  }

  u64(at: number): bigint {
    return this.view.getBigUint64(this.start + at, this.le);
  }

  /**
   * Copies `n` bytes so decoded records never pin the whole stream buffer.
   * Node values are mostly a few bytes, where a plain loop beats Buffer#copy.
   */
  bytes(at: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    const from = this.start + at;
    if (n > 32) {
      this.buf.copy(out, 0, from, from + n);
    } else {
      for (let i = 0; i < n; i++) out[i] = this.buf[from + i] as number;
    }
    return out;
  }

  /** True if `n` bytes at `at` are inside the body and hold a string whose only NUL is the last byte. */
  isString(at: number, n: number): boolean {
    if (n === 0 || at + n > this.len) return false;
    const last = this.start + at + n - 1;
    return this.buf[last] === 0 && this.buf.indexOf(0, this.start + at) === last;
  }

  /** A NUL-terminated string field of `n` bytes (its `<field>-len`), NUL included. */
  string(at: number, n: number, field: string): string {
    if (n === 0) this.fail(`${field}-len is 0: a ${field} needs at least its NUL terminator`);
    if (at + n > this.len) this.fail(`${field}-len ${n} runs past the record end (body ${this.len} bytes)`);
    const first = this.start + at;
    const last = first + n - 1;
    if (this.buf[last] !== 0) {
      this.fail(`${field} is not NUL-terminated (byte ${n - 1} of ${field}-len ${n} is ${hexByte(this.buf[last])})`);
    }
    const nul = this.buf.indexOf(0, first);
    if (nul !== last) this.fail(`${field} contains a NUL at byte ${nul - first} before its terminator at byte ${n - 1}`);
    return this.buf.toString('latin1', first, last);
  }

  /** `count` consecutive NUL-terminated names starting at `at`; returns them and the end offset. */
  names(at: number, count: number): { names: string[]; end: number } {
    const names: string[] = [];
    const bodyEnd = this.start + this.len;
    let pos = this.start + at;
    for (let i = 0; i < count; i++) {
      const nul = this.buf.indexOf(0, pos);
      if (nul < 0 || nul >= bodyEnd) this.fail(`quota name #${i} of ${count} is not NUL-terminated before the record end`);
      names.push(this.buf.toString('latin1', pos, nul));
      pos = nul + 1;
    }
    return { names, end: pos - this.start };
  }

  /** Fails unless body bytes [from, to) are zero. */
  zeros(from: number, to: number, what: string): void {
    for (let at = from; at < to; at++) {
      const b = this.buf[this.start + at] as number;
      if (b !== 0) {
        this.fail(`non-zero ${what} byte ${hexByte(b)} at body offset ${at} (stream offset 0x${(this.start + at).toString(16)})`);
      }
    }
  }

  /** Checks what follows the content: at most alignment padding, zero unless the record type is exempt. */
  finish(contentEnd: number, padMayBeGarbage = false): void {
    if (alignRecord(contentEnd) < this.len) {
      this.fail(`len ${this.len} leaves ${this.len - contentEnd} bytes after the ${contentEnd}-byte content; only padding to the next multiple of 8 may follow`);
    }
    if (!padMayBeGarbage) this.zeros(contentEnd, this.len, 'padding');
  }
}
