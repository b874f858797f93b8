/** fast-check generators for every record kind, limited to what a stream of the given version can carry. */
import fc from 'fast-check';
import { PERM_CHARS, type StreamFormat, type StreamRecord, type StreamVersion } from '../../src/stream/records.js';

/** Records as the codec returns them: plain objects (fast-check may otherwise use null prototypes). */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
/** Latin1 text without NUL: what a string field can carry. */
const text = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 1, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength });
const bytes = (maxLength: number, minLength = 0): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength, maxLength }).map((a) => Buffer.from(a));
const quotas = fc.array(rec({ name: text(12), value: u32 }), { maxLength: 6 });

const connection: fc.Arbitrary<StreamRecord> = fc
  .record({
    connId: u32,
    inData: bytes(40),
    outData: bytes(40),
    respFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    uniqueId: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
    spec: fc.oneof(
      rec({ connType: fc.constant('ring' as const), domid: u16, tdomid: u16, evtchn: u32 }),
      rec({ connType: fc.constant('socket' as const), socketFd: i32 }),
    ),
  })
  .map(({ respFraction, uniqueId, spec, ...rest }) => ({
    kind: 'connection' as const,
    ...rest,
    ...spec,
    outRespLen: Math.floor(respFraction * Math.min(rest.outData.length, 0xffff)),
    ...(uniqueId === undefined ? {} : { uniqueId }),
  }));

const watch = (version: StreamVersion): fc.Arbitrary<StreamRecord> =>
  fc
    .record({
      connId: u32,
      path: text(30),
      token: text(20),
      depth: version === 1
        ? fc.constant(undefined)
        : fc.option(fc.oneof(fc.integer({ min: 0, max: 0xfffe }), fc.constant('unlimited' as const)), { nil: undefined }),
    })
    .map(({ depth, ...rest }) => ({ kind: 'watch' as const, ...rest, ...(depth === undefined ? {} : { depth }) }));

const node: fc.Arbitrary<StreamRecord> = rec({
  kind: fc.constant('node' as const),
  connId: u32,
  txId: u32,
  path: text(40),
  value: bytes(60),
  access: fc.integer({ min: 0, max: 3 }),
  perms: fc.array(rec({ perm: fc.constantFrom(...PERM_CHARS), stale: fc.boolean(), domid: u16 }), { maxLength: 5 }),
});

/** Any record a stream of `version` can carry. */
export const anyRecord = (version: StreamVersion): fc.Arbitrary<StreamRecord> =>
  fc.oneof(
    rec({ kind: fc.constant('global' as const), socketFd: i32, evtchnFd: i32 }),
    connection,
    watch(version),
    rec({ kind: fc.constant('transaction' as const), connId: u32, txId: u32 }),
    { arbitrary: node, weight: 3 },
    rec({ kind: fc.constant('globalQuota' as const), domainQuotas: quotas, globalQuotas: quotas }),
    rec({ kind: fc.constant('domain' as const), domid: u16, features: version === 1 ? fc.constant(0) : u32, quotas }),
    // The writer pads an unknown body, so only multiples of 8 come back unchanged.
    rec({
      kind: fc.constant('unknown' as const),
      type: fc.integer({ min: 9, max: 0xffffffff }),
      body: fc.integer({ min: 0, max: 6 }).chain((n) => bytes(8 * n, 8 * n)),
    }),
  );

export const anyFormat: fc.Arbitrary<StreamFormat> = rec({
  version: fc.constantFrom(1 as const, 2 as const),
  bigEndian: fc.boolean(),
});

/** A format and records it can carry. */
export const anyStream = anyFormat.chain((format) =>
  rec({ format: fc.constant(format), records: fc.array(anyRecord(format.version), { maxLength: 12 }) }));
