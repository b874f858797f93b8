/**
 * The worked example of migration-stream.md §2.10 (little-endian, version 2)
 * three ways: as records, as bytes assembled field by field with the test
 * builder, and as the hex dump printed in the reference.
 */
import type { StreamRecord } from '../../src/stream/records.js';
import { Bytes, fromHexDump, record, stream } from './stream-builder.js';

export const GOLDEN_RECORDS: StreamRecord[] = [
  { kind: 'global', socketFd: 3, evtchnFd: 4 },
  {
    kind: 'connection', connId: 1, connType: 'ring', domid: 1, tdomid: 0x7ff4, evtchn: 7,
    inData: Buffer.alloc(0), outRespLen: 0, outData: Buffer.alloc(0), uniqueId: 0x1122334455667788n,
  },
  { kind: 'watch', connId: 1, path: 'foo', token: 't' },
  { kind: 'node', connId: 0, txId: 0, path: '/', value: Buffer.alloc(0), access: 0, perms: [{ perm: 'n', stale: false, domid: 0 }] },
  {
    kind: 'node', connId: 0, txId: 0, path: '/local', value: Buffer.from('x'), access: 0,
    perms: [{ perm: 'n', stale: false, domid: 0 }, { perm: 'r', stale: false, domid: 1 }],
  },
];

/** Record offsets in the golden stream, for error tests that patch it. */
export const AT = { global: 0x10, conn: 0x20, watch: 0x48, root: 0x60, local: 0x80, end: 0xa8 } as const;

/** The example assembled field by field, in either byte order (the reference shows little-endian). */
export function goldenBytes(littleEndian: boolean): Buffer {
  const le = littleEndian;
  const b = (): Bytes => new Bytes(le);
  return stream(2, le, [
    record(le, 1, b().i32(3).i32(4).build()),
    record(le, 2, b()
      .u32(1).u16(0).u16(1) // conn-id, ring, fields: unique-id present
      .u16(1).u16(0x7ff4).u32(7) // domid, tdomid, evtchn
      .u16(0).u16(0).u32(0) // in-data-len, out-resp-len, out-data-len
      .pad8().u64(0x1122334455667788n)
      .build()),
    record(le, 3, b().u32(1).u16(4).u16(2).cstr('foo').cstr('t').build()),
    record(le, 5, b()
      .u32(0).u32(0).u16(2).u16(0).u16(0).u16(1) // conn, tx, path-len, value-len, access, perm-count
      .text('n').u8(0).u16(0)
      .cstr('/')
      .build()),
    record(le, 5, b()
      .u32(0).u32(0).u16(7).u16(1).u16(0).u16(2)
      .text('n').u8(0).u16(0)
      .text('r').u8(0).u16(1)
      .cstr('/local').text('x')
      .build()),
  ]);
}

export const GOLDEN_BYTES: Buffer = goldenBytes(true);

/** Copied from the reference document, annotations and all. */
export const GOLDEN_DUMP = `
0000  78 65 6e 73 74 6f 72 65 00 00 00 02 00 00 00 00  xenstore........
0010  01 00 00 00 08 00 00 00 03 00 00 00 04 00 00 00  GLOBAL len 8
0020  02 00 00 00 20 00 00 00 01 00 00 00 00 00 01 00  CONN len 32: id 1, type 0, fields 1
0030  01 00 f4 7f 07 00 00 00 00 00 00 00 00 00 00 00  domid 1, tdomid 7ff4, evtchn 7, lens 0
0040  88 77 66 55 44 33 22 11 03 00 00 00 10 00 00 00  unique-id | WATCH len 16
0050  01 00 00 00 04 00 02 00 66 6f 6f 00 74 00 00 00  conn 1, 4, 2, "foo\\0" "t\\0" pad
0060  05 00 00 00 18 00 00 00 00 00 00 00 00 00 00 00  NODE len 24
0070  02 00 00 00 00 00 01 00 6e 00 00 00 2f 00 00 00  plen 2 vlen 0 acc 0 n 1, 'n' 0 0, "/\\0" pad
0080  05 00 00 00 20 00 00 00 00 00 00 00 00 00 00 00  NODE len 32
0090  07 00 01 00 00 00 02 00 6e 00 00 00 72 00 01 00  plen 7 vlen 1 n 2, n0, r1
00a0  2f 6c 6f 63 61 6c 00 78 00 00 00 00 00 00 00 00  "/local\\0" "x" | END
`;

export const GOLDEN_FROM_DOC: Buffer = fromHexDump(GOLDEN_DUMP);
