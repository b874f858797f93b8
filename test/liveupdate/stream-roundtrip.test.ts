import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../src/stream/records.js';
import { decodeStream, iterateStream } from '../../src/stream/stream-reader.js';
import { encodeStream, StreamWriter } from '../../src/stream/stream-writer.js';
import { anyStream } from './arbitrary-records.js';

describe('stream round trip', () => {
  it('decode(encode(records)) gives the records back, every kind, both byte orders, versions 1 and 2', () => {
    fc.assert(
      fc.property(anyStream, ({ format, records }) => {
        const decoded = decodeStream(encodeStream(format, records));
        expect(decoded.version).toBe(format.version);
        expect(decoded.bigEndian).toBe(format.bigEndian);
        expect(decoded.records.map((d) => d.record)).toStrictEqual(records);
      }),
      { numRuns: 400 },
    );
  });

  it('encode(decode(bytes)) reproduces writer output byte for byte', () => {
    fc.assert(
      fc.property(anyStream, ({ format, records }) => {
        const bytes = encodeStream(format, records);
        const decoded = decodeStream(bytes);
        const again = encodeStream(decoded, decoded.records.map((d) => d.record));
        expect(again.equals(bytes)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('every record starts on an 8-byte boundary and the iterator agrees with decodeStream', () => {
    fc.assert(
      fc.property(anyStream, ({ format, records }) => {
        const bytes = encodeStream(format, records);
        const listed = [...iterateStream(bytes)];
        expect(listed.every((d) => d.offset % 8 === 0)).toBe(true);
        expect(listed).toStrictEqual(decodeStream(bytes).records);
      }),
      { numRuns: 200 },
    );
  });

  it('the incremental writer, grown from a tiny buffer, matches encodeStream', () => {
    fc.assert(
      fc.property(anyStream, ({ format, records }) => {
        const writer = new StreamWriter(format, 16);
        for (const r of records) writer.write(r);
        expect(writer.finish().equals(encodeStream(format, records))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('encodes and decodes 200k NODE_DATA records quickly', () => {
    const records: StreamRecord[] = [];
    for (let i = 0; i < 200_000; i++) {
      records.push({
        kind: 'node', connId: 0, txId: 0, path: `/local/domain/${i % 100}/data/key${i}`,
        value: Buffer.from(`value-${i}`), access: 0,
        perms: [{ perm: 'n', stale: false, domid: i % 100 }, { perm: 'r', stale: false, domid: 0 }],
      });
    }
    const start = performance.now();
    const bytes = encodeStream({ version: 2, bigEndian: false }, records);
    const decoded = decodeStream(bytes);
    const elapsed = performance.now() - start;
    expect(decoded.records).toHaveLength(records.length);
    expect(decoded.records[123_456]?.record).toStrictEqual(records[123_456]);
    // About 0.2 s on a laptop; the bound only catches accidental quadratic behaviour.
    expect(elapsed).toBeLessThan(5_000);
  });
});
