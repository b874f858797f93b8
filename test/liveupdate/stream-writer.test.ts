import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../src/stream/records.js';
import { StreamEncodeError } from '../../src/stream/stream-error.js';
import { downgradeToV1, encodeStream, StreamWriter } from '../../src/stream/stream-writer.js';
import { GOLDEN_RECORDS } from './golden.js';
import { header } from './stream-builder.js';

const V1 = { version: 1, bigEndian: false } as const;
const V2 = { version: 2, bigEndian: false } as const;

const node = (fields: Partial<Extract<StreamRecord, { kind: 'node' }>> = {}): StreamRecord => ({
  kind: 'node', connId: 0, txId: 0, path: '/a', value: Buffer.from('v'), access: 0,
  perms: [{ perm: 'n', stale: false, domid: 0 }], ...fields,
});
const ring = (fields: object = {}): StreamRecord => ({
  kind: 'connection', connId: 1, connType: 'ring', domid: 1, tdomid: 0x7ff4, evtchn: 3,
  inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0), ...fields,
});

function encodeError(format: typeof V1 | typeof V2, records: StreamRecord[]): StreamEncodeError {
  try {
    encodeStream(format, records);
  } catch (err) {
    if (err instanceof StreamEncodeError) return err;
    throw err;
  }
  throw new Error('expected a StreamEncodeError');
}

describe('stream writer', () => {
  it('writes the header big-endian whatever the body order', () => {
    expect(encodeStream({ version: 1, bigEndian: true }, []).subarray(0, 16)).toEqual(header(1, 1));
    expect(encodeStream(V2, []).subarray(0, 16)).toEqual(header(2, 0));
    expect(encodeStream(V2, [])).toHaveLength(24); // header + END
  });

  it('refuses a stream version other than 1 or 2', () => {
    expect(() => new StreamWriter({ version: 3 as 2, bigEndian: false })).toThrow('stream version 3 is not 1 or 2');
  });

  it.each<[string, typeof V1 | typeof V2, StreamRecord, string]>([
    ['a depth watch in version 1', V1, { kind: 'watch', connId: 1, path: '/a', token: 't', depth: 2 },
      'WATCH_DATA_EXTENDED #0: a watch with a depth needs a version-2 stream (downgradeToV1 converts unlimited depths)'],
    ['DOMAIN_DATA features in version 1', V1, { kind: 'domain', domid: 1, features: 3, quotas: [] },
      'DOMAIN_DATA #0: features 0x3 cannot be carried by a version-1 stream (must be 0)'],
    ['a numeric depth of 0xffff', V2, { kind: 'watch', connId: 1, path: '/a', token: 't', depth: 0xffff },
      "WATCH_DATA_EXTENDED #0: depth 65535 must be an integer 0..65534 (write 'unlimited' for no limit)"],
    ['a domid out of u16 range', V2, node({ perms: [{ perm: 'r', stale: false, domid: 70000 }] }),
      'NODE_DATA #0: perm domid 70000 is not a u16'],
    ['a NUL in a path', V2, node({ path: '/a\0b' }), 'NODE_DATA #0: path "/a\\u0000b" contains NUL or a character above U+00FF'],
    ['a character above latin1', V2, { kind: 'watch', connId: 1, path: '/ä€', token: 't' },
      'WATCH_DATA #0: path "/ä€" contains NUL or a character above U+00FF'],
    ['a value longer than 65535 bytes', V2, node({ value: Buffer.alloc(65536) }),
      'NODE_DATA #0: value is 65536 bytes, more than value-len can count (65535)'],
    ['reserved access bits', V2, node({ access: 4 }), 'NODE_DATA #0: access 4 has bits other than read (1) and written (2)'],
    ['an invalid perm letter', V2, node({ perms: [{ perm: 'x' as 'n', stale: false, domid: 0 }] }),
      'NODE_DATA #0: perm "x" is not one of n, r, w, b'],
    ['out-resp-len beyond the output', V2, ring({ outRespLen: 1 }),
      'CONNECTION_DATA #0: out-resp-len 1 must be an integer from 0 to the out-data length 0 (at most 65535)'],
    ['in-data longer than 65535 bytes', V2, ring({ inData: Buffer.alloc(65536) }),
      'CONNECTION_DATA #0: in-data is 65536 bytes, more than in-data-len can count (65535)'],
    ['a unique id beyond 64 bits', V2, ring({ uniqueId: 1n << 64n }), 'CONNECTION_DATA #0: unique-id 18446744073709551616 does not fit in 64 bits'],
    ['an unknown record with a known type', V2, { kind: 'unknown', type: 5, body: Buffer.alloc(0) },
      'NODE_DATA #0: type 5 is not an unknown record type (0..8 are known; use their own kinds)'],
    ['a socket fd beyond i32', V2, { kind: 'global', socketFd: 2 ** 31, evtchnFd: 0 }, 'GLOBAL_DATA #0: socket-fd 2147483648 is not an i32'],
  ])('refuses %s', (_name, format, rec, message) => {
    const err = encodeError(format, [GOLDEN_RECORDS[0] as StreamRecord, rec]);
    expect(err.message).toBe(message.replace('#0', '#1'));
    expect(err.recordIndex).toBe(1);
  });

  it('stays usable after refusing a record, leaving no trace of it', () => {
    const writer = new StreamWriter(V2, 16);
    writer.write(node({ path: '/a' }));
    expect(() => writer.write(node({ path: '/b', access: 8, value: Buffer.alloc(100, 0xff) }))).toThrow(StreamEncodeError);
    writer.write(node({ path: '/c' }));
    expect(writer.finish()).toEqual(encodeStream(V2, [node({ path: '/a' }), node({ path: '/c' })]));
  });

  it('finish is idempotent and closes the writer', () => {
    const writer = new StreamWriter(V2);
    const first = writer.finish();
    expect(writer.finish()).toEqual(first);
    expect(() => writer.write(node())).toThrow('StreamWriter: write after finish');
  });
});

describe('downgradeToV1', () => {
  it('turns an unlimited-depth watch into a plain one and keeps everything else', () => {
    const records: StreamRecord[] = [
      ...GOLDEN_RECORDS,
      { kind: 'watch', connId: 1, path: 'a', token: 't', depth: 'unlimited' },
      { kind: 'domain', domid: 1, features: 0, quotas: [] },
    ];
    const down = downgradeToV1(records);
    expect(down.slice(0, GOLDEN_RECORDS.length)).toStrictEqual(GOLDEN_RECORDS);
    expect(down[GOLDEN_RECORDS.length]).toStrictEqual({ kind: 'watch', connId: 1, path: 'a', token: 't' });
    expect(() => encodeStream(V1, down)).not.toThrow();
  });

  it('refuses what version 1 would lose', () => {
    expect(() => downgradeToV1([{ kind: 'watch', connId: 1, path: 'a', token: 't', depth: 0 }]))
      .toThrow('WATCH_DATA_EXTENDED #0: depth 0 cannot be expressed in version 1 (WATCH_DATA has no depth)');
    expect(() => downgradeToV1([{ kind: 'domain', domid: 1, features: 4, quotas: [] }]))
      .toThrow('DOMAIN_DATA #0: features 0x4 would be lost in version 1');
  });
});
