/**
 * Test-only byte assembler for migration streams. It knows nothing of the
 * codec under test: tests spell out each field from the tables of
 * migration-stream.md, so golden bytes never come from the writer itself.
 */

/** Appends fixed-width fields in one byte order. */
export class Bytes {
  private readonly parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly le = true) {}

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  u8(...values: number[]): this {
    return this.push(Buffer.from(values));
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return this.push(b);
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return this.push(b);
  }

  i32(v: number): this {
    const b = Buffer.alloc(4);
    if (this.le) b.writeInt32LE(v);
    else b.writeInt32BE(v);
    return this.push(b);
  }

  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    if (this.le) b.writeBigUInt64LE(v);
    else b.writeBigUInt64BE(v);
    return this.push(b);
  }

  /** Characters as bytes, without a terminator. */
  text(s: string): this {
    return this.push(Buffer.from(s, 'latin1'));
  }

  /** Characters followed by NUL. */
  cstr(s: string): this {
    return this.text(s).u8(0);
  }

  bytes(b: Buffer): this {
    return this.push(Buffer.from(b));
  }

  zeros(n: number): this {
    return this.push(Buffer.alloc(n));
  }

  /** Zero bytes up to the next multiple of 8 of what has been built so far. */
  pad8(): this {
    return this.zeros((8 - (this.size % 8)) % 8);
  }

  get length(): number {
    return this.size;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The 16-byte header: ident, then version and flags, both big-endian. */
export function header(version: number, flags: number, ident = 'xenstore'): Buffer {
  return new Bytes(false).text(ident).u32(version).u32(flags).build();
}

/**
 * One record: type, len, body, zero padding to 8. `len` defaults to the body
 * length rounded up to 8 (what C writes); pass it to model other writers.
 */
export function record(le: boolean, type: number, body: Buffer, len?: number): Buffer {
  const b = new Bytes(le);
  b.u32(type).u32(len ?? body.length + ((8 - (body.length % 8)) % 8)).bytes(body);
  return b.pad8().build();
}

export const END_RECORD = (le: boolean): Buffer => record(le, 0, Buffer.alloc(0));

/** Header + records + END, little- or big-endian by `flags` bit 0. */
export function stream(version: number, le: boolean, records: Buffer[]): Buffer {
  return Buffer.concat([header(version, le ? 0 : 1), ...records, END_RECORD(le)]);
}

/** A copy of `buf` with `bytes` written at `offset`. */
export function patch(buf: Buffer, offset: number, ...bytes: number[]): Buffer {
  const out = Buffer.from(buf);
  bytes.forEach((b, i) => {
    out[offset + i] = b;
  });
  return out;
}

/** Parses a `hexdump`-style listing: leading offset and trailing text of each line are ignored. */
export function fromHexDump(dump: string): Buffer {
  const hex = dump
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => line.split(/\s+/).slice(1, 17).join(''));
  return Buffer.from(hex.join(''), 'hex');
}
