import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../src/stream/records.js';
import { checkStream } from '../../src/stream/stream-check.js';
import { StreamError } from '../../src/stream/stream-error.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { encodeStream } from '../../src/stream/stream-writer.js';
import { anyStream } from './arbitrary-records.js';
import { GOLDEN_RECORDS, goldenBytes } from './golden.js';

/**
 * Damaged streams must be refused with a StreamError and nothing else, in
 * bounded time. A damaged stream that is still accepted must re-encode to
 * the same records, so the reader never hands out something the writer
 * could not have produced.
 */
function decodeAndCheck(bytes: Buffer): 'accepted' | 'refused' {
  try {
    const decoded = decodeStream(bytes);
    checkStream(decoded.records);
    const records = decoded.records.map((d) => d.record);
    const again = decodeStream(encodeStream(decoded, records)).records.map((d) => d.record);
    expect(again).toStrictEqual(records);
    return 'accepted';
  } catch (err) {
    if (err instanceof StreamError) return 'refused';
    throw err;
  }
}

/** One stream holding every record kind, so mutations reach every decoder. */
const EVERY_KIND: StreamRecord[] = [
  ...GOLDEN_RECORDS,
  { kind: 'globalQuota', domainQuotas: [{ name: 'nodes', value: 1000 }], globalQuotas: [{ name: 'soft-memory', value: 0 }] },
  {
    kind: 'connection', connId: 2, connType: 'socket', socketFd: 11, inData: Buffer.from('\x02\x00\x00\x00in'),
    outRespLen: 3, outData: Buffer.from('abcdef'),
  },
  { kind: 'watch', connId: 2, path: '/local/domain', token: 'tok', depth: 2 },
  { kind: 'transaction', connId: 2, txId: 9 },
  { kind: 'node', connId: 2, txId: 9, path: '/local/x', value: Buffer.from([0, 1, 2]), access: 3, perms: [{ perm: 'b', stale: true, domid: 7 }] },
  { kind: 'domain', domid: 7, features: 5, quotas: [{ name: 'watches', value: 128 }] },
  { kind: 'unknown', type: 1234, body: Buffer.alloc(16, 0x5a) },
];

const SEEDS: [string, Buffer][] = [
  ['golden, little-endian', goldenBytes(true)],
  ['golden, big-endian', goldenBytes(false)],
  ['every kind, little-endian', encodeStream({ version: 2, bigEndian: false }, EVERY_KIND)],
  ['every kind, big-endian', encodeStream({ version: 2, bigEndian: true }, EVERY_KIND)],
];

function* systematicMutations(seed: Buffer): Generator<Buffer> {
  for (let i = 0; i < seed.length; i++) {
    const byte = seed[i] as number;
    for (const value of [0x00, 0xff, byte ^ 0x01, byte ^ 0x80]) {
      if (value === byte) continue;
      const copy = Buffer.from(seed);
      copy[i] = value;
      yield copy;
    }
    yield Buffer.concat([seed.subarray(0, i), seed.subarray(i + 1)]); // delete one byte
    for (const value of [0x00, 0xff]) {
      yield Buffer.concat([seed.subarray(0, i), Buffer.of(value), seed.subarray(i)]); // insert one byte
    }
  }
  for (let len = 0; len < seed.length; len++) yield seed.subarray(0, len); // truncate
}

type Mutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number };

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }), weight: 4 },
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }),
  fc.record({ op: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 9 }) }),
);

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const at = Math.floor(m.at * bytes.length);
  switch (m.op) {
    case 'set': {
      const copy = Buffer.from(bytes);
      if (at < copy.length) copy[at] = m.value;
      return copy;
    }
    case 'truncate': return bytes.subarray(0, at);
    case 'insert': return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'delete': return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
  }
}

describe('stream fuzzing', () => {
  it.each(SEEDS)('every single-byte change, insertion, deletion and truncation of %s', (_name, seed) => {
    const outcomes = { accepted: 0, refused: 0 };
    for (const damaged of systematicMutations(seed)) outcomes[decodeAndCheck(damaged)]++;
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.accepted).toBeGreaterThan(0); // e.g. a changed value byte or fd
  }, 10_000);

  it('random damage to random valid streams', () => {
    fc.assert(
      fc.property(anyStream, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ format, records }, mutations) => {
        decodeAndCheck(mutations.reduce(mutate, encodeStream(format, records)));
      }),
      { numRuns: 1500 },
    );
  }, 20_000);

  it('random bytes after a valid header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0, 1), (body, flags) => {
        const head = Buffer.from(goldenBytes(true).subarray(0, 16));
        head[15] = flags;
        decodeAndCheck(Buffer.concat([head, body]));
      }),
      { numRuns: 1000 },
    );
  }, 20_000);
});
