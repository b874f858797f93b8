import { describe, expect, it } from 'vitest';
import { checkStream } from '../../src/stream/stream-check.js';
import { decodeStream, iterateStream } from '../../src/stream/stream-reader.js';
import { encodeStream } from '../../src/stream/stream-writer.js';
import { AT, GOLDEN_BYTES, GOLDEN_FROM_DOC, GOLDEN_RECORDS, goldenBytes } from './golden.js';

describe('golden vector: migration-stream.md §2.10', () => {
  it('the builder reproduces the hex dump of the reference', () => {
    expect(GOLDEN_BYTES.toString('hex')).toBe(GOLDEN_FROM_DOC.toString('hex'));
    expect(GOLDEN_BYTES.length).toBe(0xb0);
  });

  for (const littleEndian of [true, false]) {
    const name = littleEndian ? 'little-endian' : 'big-endian';
    const bytes = goldenBytes(littleEndian);

    it(`encodes to the expected bytes (${name})`, () => {
      const encoded = encodeStream({ version: 2, bigEndian: !littleEndian }, GOLDEN_RECORDS);
      expect(encoded.toString('hex')).toBe(bytes.toString('hex'));
    });

    it(`decodes to the expected records (${name})`, () => {
      const decoded = decodeStream(bytes);
      expect(decoded.version).toBe(2);
      expect(decoded.bigEndian).toBe(!littleEndian);
      expect(decoded.records.map((d) => d.record)).toStrictEqual(GOLDEN_RECORDS);
      expect(decoded.records.map((d) => d.offset)).toEqual([AT.global, AT.conn, AT.watch, AT.root, AT.local]);
      expect(decoded.records.map((d) => d.index)).toEqual([0, 1, 2, 3, 4]);
    });
  }

  it('the iterator yields what decodeStream returns', () => {
    expect([...iterateStream(GOLDEN_BYTES)]).toStrictEqual(decodeStream(GOLDEN_BYTES).records);
  });

  it('passes the consistency check', () => {
    expect(checkStream(decodeStream(GOLDEN_BYTES).records)).toBeUndefined();
  });

  it('decoded values are copies, not views of the stream', () => {
    const bytes = Buffer.from(GOLDEN_BYTES);
    const node = decodeStream(bytes).records[4]?.record;
    bytes.fill(0xee, 0x80, 0xa8);
    expect(node).toMatchObject({ kind: 'node', value: Buffer.from('x') });
  });
});
