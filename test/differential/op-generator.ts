/**
 * Random operation sequences for the differential test (C xenstored 4.17 vs
 * xenstored-sim --compat 4.17).
 *
 * A sequence is a number of raw socket connections (2–4, all dom0-privileged),
 * up to two guest domains (3 and 7, each with one ring connection, after the
 * sockets) and a list of operations. Each operation names the connection it is sent
 * on, the transaction it is sent in (symbolically, see TxRef), the message
 * type number and the exact payload bytes. Nothing here talks to a daemon:
 * runner.ts turns an operation into a frame.
 *
 * Paths come from a deliberately small alphabet so that operations collide:
 * the same nodes are written, removed, watched and read inside and outside
 * transactions on several connections. The pools also contain the special
 * watch paths, relative paths (relative to /local/domain/0 for sockets),
 * invalid paths and paths around the 4.17 length limit.
 *
 * The runner introduces the sequence's guests before the first op, each
 * with a home /local/domain/<id> it owns. The only domain life-cycle op is a
 * domid reuse (RELEASE of a guest from dom0, then INTRODUCE of the same id
 * and a new ring connection, as a toolstack does): nodes and permission
 * entries that name the old domain are judged by C's generation rule. The
 * kit's shim says every domid 0..32751 exists.
 *
 * Besides single random ops, a sequence contains occasional blocks: a
 * transaction conflict between two connections (or two transactions of one
 * connection), a directory too big for one reply (DIRECTORY E2BIG,
 * DIRECTORY_PART chunks), many transactions at once.
 *
 * Left out on purpose, because C xenstored 4.17 answers them with undefined
 * behaviour (stale errno, or an assertion failure that kills the daemon),
 * found by running the harness C against C:
 * - malformed payloads of READ, MKDIR, RM, DIRECTORY, GET_PERMS (onePathArb);
 * - RESET_WATCHES with the tx_id of an open transaction (resetWatchesArb);
 * - SET_PERMS on `@…` paths other than the two special names (pathArb).
 */
import fc from 'fast-check';
import { MessageType, PAYLOAD_MAX, messageTypeName } from '../../src/wire/vocabulary.js';

/**
 * Which tx_id an operation carries. The generator cannot know real ids, so
 * it refers to transactions symbolically and the runner resolves the
 * reference against what the daemon under test replied so far (ids are per
 * connection from 1, so they normally agree between daemons anyway).
 * - none: 0.
 * - slot k: the id returned by the k-th (0-based) successful
 *   TRANSACTION_START on the same connection in this run, whether or not
 *   that transaction has ended since (so it can name a finished one). If
 *   fewer than k+1 were started, UNSTARTED_SLOT_BASE + k, an id no daemon
 *   has handed out (ENOENT expected).
 * - open k: the k-th most recently started transaction of the connection
 *   that is still open (as far as the replies tell: not yet given to a
 *   TRANSACTION_END that answered anything but EINVAL, not removed by
 *   RESET_WATCHES). If there is no such transaction, 0 (no transaction).
 *   This is what makes operations actually run inside transactions, and
 *   commits conflict with other connections.
 * - raw: a literal id (used for ids that were never handed out).
 */
export type TxRef =
  | { readonly kind: 'none' }
  | { readonly kind: 'slot'; readonly slot: number }
  | { readonly kind: 'open'; readonly nth: number }
  | { readonly kind: 'raw'; readonly id: number };

/** tx_id sent for a slot whose transaction was never started. */
export const UNSTARTED_SLOT_BASE = 1000;

export interface Op {
  /** Connection index, 0-based, < the sequence's `connections`. */
  readonly conn: number;
  readonly tx: TxRef;
  /** Message type number as sent in the header (may be unknown). */
  readonly type: number;
  /** Exact payload bytes; the header's len is payload.length. */
  readonly payload: Buffer;
  /** Human-readable summary, used in failure reports. */
  readonly label: string;
  /** A RELEASE of this guest domain, which the runner then introduces again and reconnects. */
  readonly reintroduce?: number;
}

export interface OpSequence {
  /** Number of socket connections opened (2–4). */
  readonly connections: number;
  /** Guest domains; guest k's ring connection has index connections + k. */
  readonly guests: readonly number[];
  readonly ops: readonly Op[];
}

// ---------------------------------------------------------------------------
// Rendering helpers (also used by runner.ts for replies)

/** Lossless, printable rendering of bytes: ASCII as is, NUL as \0, others \xNN. */
export function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0) out += '\\0';
    else if (b === 0x5c) out += '\\\\';
    else if (b === 0x22) out += '\\"';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** escapeBytes, shortened for display when long. */
export function showBytes(bytes: Uint8Array, max = 96): string {
  if (bytes.length <= max) return `"${escapeBytes(bytes)}"`;
  const head = escapeBytes(bytes.subarray(0, max / 2));
  const tail = escapeBytes(bytes.subarray(bytes.length - 8));
  return `"${head}"…"${tail}" (${bytes.length} bytes)`;
}

export function describeTx(tx: TxRef): string {
  switch (tx.kind) {
    case 'none':
      return '';
    case 'slot':
      return ` tx=slot${tx.slot}`;
    case 'open':
      return ` tx=open${tx.nth}`;
    case 'raw':
      return ` tx=#${tx.id}`;
  }
}

/** One line: `c1 tx=slot0 WRITE "/a\0hello"  [write value]`. */
export function describeOp(op: Op): string {
  return `c${op.conn}${describeTx(op.tx)} ${messageTypeName(op.type)} ${showBytes(op.payload)}  [${op.label}]`;
}

/** A whole sequence, one op per line, numbered. */
export function describeSequence(seq: OpSequence): string {
  const lines = [`connections=${seq.connections} guests=${seq.guests.join(',') || 'none'} ops=${seq.ops.length}`];
  seq.ops.forEach((op, i) => lines.push(`  #${i} ${describeOp(op)}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Building blocks

const NUL = Buffer.from([0]);
const b = (s: string): Buffer => Buffer.from(s, 'utf8');
/** `s1\0s2\0…` — every string NUL-terminated. */
const strings = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.flatMap((p) => [typeof p === 'string' ? b(p) : p, NUL]));

/** [value, weight] pairs → an arbitrary picking values with those weights. */
function weighted<T>(pairs: readonly (readonly [T, number])[]): fc.Arbitrary<T> {
  return fc.oneof(...pairs.map(([v, weight]) => ({ weight, arbitrary: fc.constant(v) })));
}

/** Ordinary absolute paths; '/' and the home of socket connections included. */
const ABS_PATHS = [
  ['/a', 8], ['/a/b', 6], ['/a/b/c', 2], ['/a/c', 2], ['/b', 5], ['/b/c', 2], ['/a/@x', 1], ['/c', 1],
  ['/local/domain/0/x', 2], ['/local/domain/0', 1], ['/', 2],
  ['/local/domain/3/x', 2], ['/local/domain/3', 1], ['/local/domain/7/x', 1],
] as const;
/** Relative paths (→ /local/domain/0/…); 'x' collides with /local/domain/0/x. */
const REL_PATHS = [['x', 4], ['x/y', 2], ['y', 1]] as const;
const SPECIAL_PATHS = [['@introduceDomain', 2], ['@releaseDomain', 2], ['@other', 1], ['@', 1]] as const;
/** Never valid: empty, trailing '/', '//', bad characters. */
const INVALID_PATHS = ['', '/a/', '/a//b', '//', 'x/', '/a b', '/a.b', '/a:b', '/\u00e4', '/a\x01', '/a/*'];
/** Nodes that exist from the start; only used for non-modifying requests. */
const READONLY_PATHS = ['/tool', '/tool/xenstored', '/local', '/local/domain'];

/**
 * Paths around the 4.17 path-length rule: strlen(path) > off + 2048 ⇒
 * EINVAL, where off is the length of a leading /local/domain/<N>/ prefix.
 */
const longPathArb = fc.constantFrom(
  `/a/${'L'.repeat(2045)}`, // 2048: accepted
  `/a/${'L'.repeat(2046)}`, // 2049: EINVAL
  `/local/domain/0/${'M'.repeat(2048)}`, // remainder 2048 after the prefix: accepted
  `/local/domain/0/${'M'.repeat(2049)}`, // remainder 2049: EINVAL
  'R'.repeat(2048), // relative: becomes /local/domain/0/RRR…
  'R'.repeat(2049),
);

type PathUse = 'modify' | 'read' | 'watch' | 'perms';

/**
 * SET_PERMS only gets the two real special names: for any other `@…` path
 * C 4.17's special-path handler fails without setting the reply's error, so
 * the reply carries a stale errno (ENOENT, EINVAL…) and occasionally the
 * daemon aborts. Undefined behaviour; not generated.
 */
const PERMS_SPECIAL_PATHS = [['@introduceDomain', 1], ['@releaseDomain', 1]] as const;

function pathArb(use: PathUse): fc.Arbitrary<string> {
  const parts: fc.WeightedArbitrary<string>[] = [
    { weight: 24, arbitrary: weighted(ABS_PATHS) },
    { weight: 7, arbitrary: weighted(REL_PATHS) },
    {
      weight: use === 'watch' ? 4 : use === 'perms' ? 2 : 1,
      arbitrary: weighted(use === 'perms' ? PERMS_SPECIAL_PATHS : SPECIAL_PATHS),
    },
    { weight: 2, arbitrary: fc.constantFrom(...INVALID_PATHS) },
    { weight: 1, arbitrary: longPathArb },
  ];
  if (use === 'read' || use === 'watch') parts.push({ weight: 2, arbitrary: fc.constantFrom(...READONLY_PATHS) });
  return fc.oneof(...parts);
}

/** Transaction reference; the weights say how often each kind is drawn. */
function txArb(weights: { none: number; open: number; slot: number; raw: number }): fc.Arbitrary<TxRef> {
  const choices: fc.WeightedArbitrary<TxRef>[] = [
    { weight: weights.none, arbitrary: fc.constant<TxRef>({ kind: 'none' }) },
    {
      weight: weights.open,
      arbitrary: weighted([[0, 4], [1, 1]]).map((nth): TxRef => ({ kind: 'open', nth })),
    },
    {
      weight: weights.slot,
      arbitrary: fc.integer({ min: 0, max: 2 }).map((slot): TxRef => ({ kind: 'slot', slot })),
    },
    {
      weight: weights.raw,
      arbitrary: fc.constantFrom(4242, 0xffffffff, 0x80000000).map((id): TxRef => ({ kind: 'raw', id })),
    },
  ];
  return fc.oneof(...choices.filter((c) => c.weight > 0));
}
/** Node requests: often inside a transaction. */
const dataTx = txArb({ none: 12, open: 10, slot: 1, raw: 1 });
/** WATCH/UNWATCH ignore tx_id (but echo it). */
const watchTx = txArb({ none: 16, open: 2, slot: 1, raw: 1 });
/** Requests that only validate tx_id. */
const plainTx = txArb({ none: 18, open: 1, slot: 1, raw: 1 });

/** A value to write. `fill` values are sized relative to the payload limit. */
type ValueSpec =
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'fill'; readonly slack: number; readonly fill: number };

const valueArb: fc.Arbitrary<ValueSpec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .constantFrom('', 'v', 'hello', 'x y', '0', 'value-2')
      .map((s): ValueSpec => ({ kind: 'bytes', bytes: b(s) })),
  },
  {
    weight: 3,
    arbitrary: fc.uint8Array({ maxLength: 12 }).map((u): ValueSpec => ({ kind: 'bytes', bytes: Buffer.from(u) })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('a\0b', '\0', '\0\0', 'end\0', '\0start', '\xff\xfe\0\x01')
      .map((s): ValueSpec => ({ kind: 'bytes', bytes: Buffer.from(s, 'latin1') })),
  },
  {
    weight: 1,
    // slack 0: payload exactly PAYLOAD_MAX; larger slack: just below.
    arbitrary: fc
      .record({ slack: fc.constantFrom(0, 1, 2, 100, 1000), fill: fc.constantFrom(0, 0x41, 0xff) })
      .map((r): ValueSpec => ({ kind: 'fill', ...r })),
  },
);

function valueBytes(spec: ValueSpec, room: number): Buffer {
  if (spec.kind === 'bytes') return spec.bytes;
  const len = Math.max(0, room - spec.slack);
  // A repeating pattern that starts with the fill byte and contains NULs.
  const out = Buffer.alloc(len, spec.fill);
  for (let i = 7; i < len; i += 251) out[i] = 0;
  return out;
}

function describeValue(v: Buffer): string {
  if (v.length > 64) return `value ${v.length} bytes`;
  return v.includes(0) ? `binary value (${v.length})` : v.length === 0 ? 'empty value' : 'value';
}

// ---------------------------------------------------------------------------
// Per-request arbitraries: each yields { tx, type, payload, label } without conn.

type OpBody = Omit<Op, 'conn'>;

/**
 * One-argument node requests (READ, MKDIR, RM, DIRECTORY, GET_PERMS):
 * `<path>\0` only.
 *
 * Malformed shapes (missing NUL, extra argument, double NUL, empty payload)
 * are deliberately NOT generated for these five types: C xenstored 4.17's
 * handlers then reply with a stale errno left by an earlier, unrelated call
 * (EINVAL, ENOENT or ENOMEM for the same request, varying with history and
 * even between two C daemons fed the same sequence), and after a WATCH on
 * the same connection the daemon aborts (`consider_message: Assertion
 * conn->in == NULL failed`). That is undefined behaviour, not something a
 * simulator can or should match. The empty path with its NUL (`\0`, a
 * deterministic EINVAL) is still generated through the invalid-path pool,
 * and the malformed shapes are generated for every other request type.
 */
function onePathArb(type: number, use: PathUse): fc.Arbitrary<OpBody> {
  return fc
    .record({ tx: dataTx, path: pathArb(use) })
    .map(({ tx, path }): OpBody => ({ tx, type, payload: strings(path), label: 'path' }));
}

const writeArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: dataTx,
    path: pathArb('modify'),
    value: valueArb,
    shape: weighted([['ok', 20], ['noNul', 1]] as const),
  })
  .map(({ tx, path, value, shape }): OpBody => {
    const p = b(path);
    if (shape === 'noNul') return { tx, type: MessageType.WRITE, payload: p, label: 'malformed: no NUL' };
    const v = valueBytes(value, PAYLOAD_MAX - p.length - 1);
    return {
      tx,
      type: MessageType.WRITE,
      payload: Buffer.concat([p, NUL, v]),
      label: describeValue(v),
    };
  });

/** Permission entries that parse, for domains that exist (0..32751). */
const GOOD_ENTRIES = ['n0', 'r0', 'w0', 'b0', 'r1', 'w2', 'b3', 'n5', 'r7', 'b32751', 'r0x10', 'w017', 'n0x0', 'r00'];
/** Entries that parse but name domains that do not exist (stored, flagged stale). */
const STALE_ENTRIES = ['r-1', 'b4294967295', 'r32752', 'w40000', 'r65536'];
/** Entries that do not parse (EINVAL). */
const BAD_ENTRIES = ['x1', 'r', '', 'rfoo', 'r1x', 'R1', 'r 1', 'r+3', 'r0x', 'r08'];
/** Owner entries (the first one) for domains that exist. */
const GOOD_OWNERS = [['n0', 6], ['r0', 2], ['b0', 1], ['w0', 1], ['n1', 2], ['r5', 1], ['b0x1f', 1], ['n017', 1], ['n3', 2], ['b7', 1]] as const;
/** Owner entries that parse but name a domain that does not exist (ENOENT). */
const MISSING_OWNERS = ['n32752', 'n40000', 'n-1'];

type PermsMode = 'valid' | 'stale' | 'badEntry' | 'badOwner' | 'many';
const permsArb: fc.Arbitrary<{ mode: PermsMode; entries: string[] }> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(weighted(GOOD_OWNERS), fc.array(fc.constantFrom(...GOOD_ENTRIES), { maxLength: 4 }))
      .map(([o, rest]) => ({ mode: 'valid' as const, entries: [o, ...rest] })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(weighted(GOOD_OWNERS), fc.array(fc.constantFrom(...GOOD_ENTRIES, ...STALE_ENTRIES), { minLength: 1, maxLength: 4 }))
      .map(([o, rest]) => ({ mode: 'stale' as const, entries: [o, ...rest] })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(weighted(GOOD_OWNERS), fc.array(fc.constantFrom(...GOOD_ENTRIES), { maxLength: 3 }), fc.constantFrom(...BAD_ENTRIES))
      .map(([o, rest, bad]) => ({ mode: 'badEntry' as const, entries: [o, ...rest, bad] })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...MISSING_OWNERS, ...BAD_ENTRIES), fc.array(fc.constantFrom(...GOOD_ENTRIES), { maxLength: 2 }))
      .map(([o, rest]) => ({ mode: 'badOwner' as const, entries: [o, ...rest] })),
  },
  {
    weight: 1,
    // Many entries: dom0 is not limited by the node-permissions quota.
    arbitrary: fc
      .tuple(weighted(GOOD_OWNERS), fc.array(fc.constantFrom(...GOOD_ENTRIES, ...STALE_ENTRIES), { minLength: 6, maxLength: 40 }))
      .map(([o, rest]) => ({ mode: 'many' as const, entries: [o, ...rest] })),
  },
);

const setPermsArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: dataTx,
    path: pathArb('perms'),
    perms: permsArb,
    shape: weighted([['ok', 16], ['noEntries', 1], ['noTrailingNul', 1], ['noNul', 1]] as const),
  })
  // A guest that owns `/` when it is released makes C 4.17 remove its root
  // node (domain_tree_remove_sub's rm_node), after which C refuses every
  // request with EACCES: a C failure the simulator does not imitate (README,
  // Known limits), so the root keeps dom0 as its owner here.
  .filter(({ path, perms }) => path !== '/' || perms.entries[0]!.slice(1) === '0')
  .map(({ tx, path, perms, shape }): OpBody => {
    const entries = perms.entries;
    let payload: Buffer;
    switch (shape) {
      case 'noEntries':
        payload = strings(path);
        break;
      case 'noTrailingNul':
        payload = Buffer.concat([strings(path, ...entries.slice(0, -1)), b(entries[entries.length - 1]!)]);
        break;
      case 'noNul':
        payload = b(path);
        break;
      default:
        payload = strings(path, ...entries);
    }
    const label = shape === 'ok' ? `${entries.length} perm entries, ${perms.mode}` : `malformed: ${shape}`;
    return { tx, type: MessageType.SET_PERMS, payload, label };
  });

/**
 * Watch tokens. The two long ones probe the 4096-byte limit on events: with a
 * short watch path the WATCH request and its initial event fit, but the event
 * for a deeper node (path + NUL + token + NUL > 4096) is dropped silently.
 */
const TOKENS = [
  ['t1', 16], ['t2', 6], ['tok', 2], ['', 2], ['a b', 2], ['@x', 2], ['K'.repeat(4000), 1], ['K'.repeat(4088), 1],
] as const;

function watchArb(type: number): fc.Arbitrary<OpBody> {
  return fc
    .record({
      tx: watchTx,
      path: pathArb('watch'),
      token: weighted(TOKENS),
      shape: weighted([['ok', 20], ['oneArg', 1], ['extraArg', 1], ['noTrailingNul', 1], ['empty', 1]] as const),
    })
    .map(({ tx, path, token, shape }): OpBody => {
      const payload = shape === 'empty' ? Buffer.alloc(0) : twoArgs(path, token, '1', shape);
      const shown = token.length > 16 ? `${token.slice(0, 4)}…" (${token.length} chars)` : `${token}"`;
      return { tx, type, payload, label: shape === 'ok' ? `token "${shown}` : `malformed: ${shape}` };
    });
}

/** A two-string payload, well formed or malformed in one of the ways C parses differently. */
function twoArgs(first: string, second: string, extra: string, shape: 'ok' | 'oneArg' | 'extraArg' | 'noTrailingNul'): Buffer {
  switch (shape) {
    case 'oneArg': return strings(first);
    case 'extraArg': return strings(first, second, extra);
    case 'noTrailingNul': return Buffer.concat([strings(first), b(second)]);
    default: return strings(first, second);
  }
}

const directoryPartArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: dataTx,
    path: pathArb('read'),
    offset: fc.constantFrom('0', '0', '0', '1', '2', '4', '5', '7', '100', '-1', 'abc', '', '4294967295'),
    shape: weighted([['ok', 12], ['oneArg', 1], ['extraArg', 1], ['noTrailingNul', 1]] as const),
  })
  .map(({ tx, path, offset, shape }): OpBody => {
    const payload = twoArgs(path, offset, '0', shape);
    return {
      tx,
      type: MessageType.DIRECTORY_PART,
      payload,
      label: shape === 'ok' ? `offset ${JSON.stringify(offset)}` : `malformed: ${shape}`,
    };
  });

const txStartArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: txArb({ none: 20, open: 3, slot: 1, raw: 1 }),
    payload: weighted([['\0', 8], ['', 1], ['junk\0', 1], ['a\0b\0', 1]] as const),
  })
  .map(({ tx, payload }): OpBody => ({
    tx,
    type: MessageType.TRANSACTION_START,
    payload: Buffer.from(payload, 'latin1'),
    label: tx.kind === 'none' ? 'start' : 'start inside a transaction',
  }));

const txEndArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: txArb({ none: 1, open: 16, slot: 2, raw: 1 }),
    payload: weighted([
      ['T\0', 24], ['F\0', 10], ['X\0', 1], ['T', 1], ['\0', 1], ['', 1], ['T\0F\0', 1], ['TF\0', 1],
    ] as const),
  })
  .map(({ tx, payload }): OpBody => ({
    tx,
    type: MessageType.TRANSACTION_END,
    payload: Buffer.from(payload, 'latin1'),
    label: payload === 'T\0' ? 'commit' : payload === 'F\0' ? 'abort' : 'malformed end',
  }));

const DOMID_ARGS = ['0', '1', '5', '32751', '32752', '32767', '65535', 'abc', '-1', '0x10', '017', '99999999999', '', ' 3', '3x'];

function domidArb(type: number): fc.Arbitrary<OpBody> {
  return fc
    .record({
      tx: plainTx,
      domid: fc.constantFrom(...DOMID_ARGS),
      shape: weighted([['ok', 6], ['noNul', 1], ['extraArg', 1]] as const),
    })
    .map(({ tx, domid, shape }): OpBody => ({
      tx,
      type,
      payload: shape === 'noNul' ? b(domid) : shape === 'extraArg' ? strings(domid, '1') : strings(domid),
      label: shape === 'ok' ? `domid ${JSON.stringify(domid)}` : `malformed: ${shape}`,
    }));
}

/**
 * Requests about domains that are never introduced here: all fail without
 * changing state (RELEASE/RESUME/SET_TARGET of unknown domains, RELEASE 0).
 */
const domainErrorArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: plainTx,
    type: fc.constantFrom(MessageType.RELEASE, MessageType.RESUME, MessageType.SET_TARGET),
    args: fc.constantFrom<string[]>(['0'], ['5'], ['abc'], [], ['5', '6'], ['0', '0']),
  })
  .map(({ tx, type, args }): OpBody => ({
    tx,
    type,
    payload: args.length === 0 ? Buffer.alloc(0) : strings(...args),
    label: 'domain not introduced',
  }));

/**
 * RESET_WATCHES never carries a slot's tx id: inside an open transaction C
 * 4.17 aborts (`conn_delete_all_transactions: Assertion conn->transaction ==
 * NULL failed`). An unknown id (ENOENT before the handler runs) is fine.
 */
const resetWatchesArb: fc.Arbitrary<OpBody> = fc
  .record({ tx: txArb({ none: 18, open: 0, slot: 0, raw: 1 }), payload: fc.constantFrom('', '\0', 'junk\0') })
  .map(({ tx, payload }): OpBody => ({
    tx,
    type: MessageType.RESET_WATCHES,
    payload: b(payload),
    label: 'reset watches',
  }));

/** Types without a handler in 4.17 (ENOSYS), including the server-only ones. */
const unknownTypeArb: fc.Arbitrary<OpBody> = fc
  .record({
    tx: plainTx,
    type: fc.constantFrom(15, 16, 20, 23, 24, 25, 26, 27, 99, 65535, 0x10000),
    payload: fc.constantFrom('', 'x\0', '/a\0'),
  })
  .map(({ tx, type, payload }): OpBody => ({ tx, type, payload: b(payload), label: 'unknown type' }));

/**
 * A frame whose len exceeds PAYLOAD_MAX: C xenstored drops the connection.
 * Rare, because it ends the connection for the rest of the sequence.
 */
const oversizedArb: fc.Arbitrary<OpBody> = fc
  .constantFrom(PAYLOAD_MAX + 1, PAYLOAD_MAX + 100)
  .map((len): OpBody => {
    const payload = Buffer.alloc(len, 0x41);
    payload.write('/a\0', 0, 'latin1');
    return { tx: { kind: 'none' }, type: MessageType.WRITE, payload, label: `oversized frame (len ${len})` };
  });

const bodyArb: fc.Arbitrary<OpBody> = fc.oneof(
  { weight: 80, arbitrary: writeArb },
  { weight: 40, arbitrary: onePathArb(MessageType.READ, 'read') },
  { weight: 25, arbitrary: onePathArb(MessageType.MKDIR, 'modify') },
  { weight: 35, arbitrary: onePathArb(MessageType.RM, 'modify') },
  { weight: 30, arbitrary: onePathArb(MessageType.DIRECTORY, 'read') },
  { weight: 15, arbitrary: directoryPartArb },
  { weight: 20, arbitrary: onePathArb(MessageType.GET_PERMS, 'read') },
  { weight: 25, arbitrary: setPermsArb },
  { weight: 40, arbitrary: watchArb(MessageType.WATCH) },
  { weight: 20, arbitrary: watchArb(MessageType.UNWATCH) },
  { weight: 5, arbitrary: resetWatchesArb },
  { weight: 60, arbitrary: txStartArb },
  { weight: 50, arbitrary: txEndArb },
  { weight: 5, arbitrary: domidArb(MessageType.GET_DOMAIN_PATH) },
  { weight: 5, arbitrary: domidArb(MessageType.IS_DOMAIN_INTRODUCED) },
  { weight: 5, arbitrary: domainErrorArb },
  { weight: 10, arbitrary: unknownTypeArb },
  { weight: 1, arbitrary: oversizedArb },
);

export interface SequenceOptions {
  /** Most operations per sequence (default 60). */
  maxOps?: number;
  /** Fewest operations per sequence (default 1). */
  minOps?: number;
}

/** The guest domains a sequence may have (see the runner's prologue). */
export const GUEST_DOMIDS = [3, 7] as const;

/**
 * CONTROL quota requests: the figures C reports per domain (nodes, watches,
 * transactions, memory), and quota changes that cannot stall a guest (a
 * memory quota below a guest's use stops C reading its ring; that is left
 * to the transcript tests).
 */
const quotaArb: fc.Arbitrary<OpBody> = fc
  .constantFrom(['quota', '0'], ['quota', '3'], ['quota', '7'], ['quota', 'set', 'nodes', '6'], ['quota', 'set', 'nodes', '1000'],
    ['quota', 'set', 'watches', '3'], ['quota', 'set', 'transactions', '2'], ['quota', 'set', 'node-size', '64'])
  .map((args): OpBody => ({ tx: { kind: 'none' }, type: MessageType.CONTROL, payload: strings(...args), label: `control ${args.join(' ')}` }));

/** A large value written by anyone: what memory accounting is made of. */
const bigWriteArb: fc.Arbitrary<OpBody> = fc
  .record({ tx: dataTx, path: fc.constantFrom('/local/domain/3/big', 'big', '/local/domain/7/big', '/a/big'), size: fc.constantFrom(100, 1000, 2000) })
  .map(({ tx, path, size }): OpBody => ({
    tx, type: MessageType.WRITE, payload: Buffer.concat([b(path), NUL, Buffer.alloc(size, 0x62)]), label: `value ${size} bytes`,
  }));

/** dom0 releases a guest; the runner introduces the same domid again (a new domain) and reconnects. */
const reuseArb: fc.Arbitrary<OpBody & { reintroduce: number }> = fc.constantFrom(...GUEST_DOMIDS).map((domid) => ({
  tx: { kind: 'none' }, type: MessageType.RELEASE, payload: strings(String(domid)), label: `domid reuse ${domid}`, reintroduce: domid,
}));

/**
 * Requests only sockets send. A guest's oversized frame (len > 4096) makes
 * C ignore its ring for good (no reply, no close); a guest's SET_PERMS on a special path is refused
 * by C 4.17's set_perms_special with a return value its caller ignores in
 * favour of a stale errno (core.c do_set_perms: `return errno`).
 */
function guestMaySend(body: OpBody): boolean {
  if (body.payload.length > PAYLOAD_MAX || body.reintroduce !== undefined || body.type === MessageType.CONTROL) return false;
  return !(body.type === MessageType.SET_PERMS && body.payload[0] === 0x40);
}

/** An op before its connection index is reduced modulo the connection count. */
interface RawOp {
  readonly conn: number;
  readonly body: OpBody;
}

const TX_OPEN0: TxRef = { kind: 'open', nth: 0 };
const commitBody: OpBody = {
  tx: TX_OPEN0,
  type: MessageType.TRANSACTION_END,
  payload: Buffer.from('T\0', 'latin1'),
  label: 'commit',
};
const startBody: OpBody = {
  tx: { kind: 'none' },
  type: MessageType.TRANSACTION_START,
  payload: Buffer.from('\0', 'latin1'),
  label: 'start',
};

/** Conflict-prone nodes: few, so that blocks collide with each other and with single ops. */
const hotPathArb = weighted([['/a', 4], ['/a/b', 3], ['/b', 2], ['x', 2], ['/a/b/c', 1]] as const);

/**
 * A transaction that touches a node which another connection (or another
 * transaction of the same connection) changes before the commit:
 * START on a; in it READ/WRITE/DIRECTORY/RM p; on b WRITE/RM/MKDIR/SET_PERMS
 * p or a relative of p (outside any transaction, or inside b's newest open
 * one); in a's transaction WRITE q; END T on a (EAGAIN when the touched
 * node changed, otherwise OK with its events). Single ops of the sequence
 * interleave only between blocks, but blocks and their nodes overlap.
 */
const conflictBlockArb: fc.Arbitrary<RawOp[]> = fc
  .record({
    a: fc.integer({ min: 0, max: 3 }),
    other: fc.integer({ min: 1, max: 3 }),
    sameConn: weighted([[false, 4], [true, 1]]),
    p: hotPathArb,
    touch: weighted([[MessageType.READ, 3], [MessageType.WRITE, 3], [MessageType.DIRECTORY, 2], [MessageType.RM, 1]]),
    change: weighted([[MessageType.WRITE, 4], [MessageType.RM, 2], [MessageType.MKDIR, 1], [MessageType.SET_PERMS, 1]]),
    changeChild: fc.boolean(),
    otherInTx: weighted([[false, 3], [true, 1]]),
    q: hotPathArb,
    value: fc.constantFrom('1', '2', ''),
  })
  .map(({ a, other, sameConn, p, touch, change, changeChild, otherInTx, q, value }): RawOp[] => {
    const bConn = sameConn ? a : a + other; // reduced modulo the connection count later
    const changed = changeChild ? `${p}/k` : p;
    const changePayload =
      change === MessageType.WRITE
        ? Buffer.concat([strings(changed), b(value)])
        : change === MessageType.SET_PERMS
          ? strings(changed, 'n0', 'r1')
          : strings(changed);
    const touchPayload = touch === MessageType.WRITE ? Buffer.concat([strings(p), b(value)]) : strings(p);
    const ops: RawOp[] = [
      { conn: a, body: startBody },
      { conn: a, body: { tx: TX_OPEN0, type: touch, payload: touchPayload, label: 'conflict block: touch' } },
    ];
    // sameConn: the change comes from a second transaction of the same
    // connection, committed before the first one.
    if (sameConn || otherInTx) ops.push({ conn: bConn, body: startBody });
    ops.push({
      conn: bConn,
      body: {
        tx: sameConn || otherInTx ? TX_OPEN0 : { kind: 'none' },
        type: change,
        payload: changePayload,
        label: 'conflict block: change',
      },
    });
    if (sameConn || otherInTx) ops.push({ conn: bConn, body: commitBody });
    ops.push({
      conn: a,
      body: { tx: TX_OPEN0, type: MessageType.WRITE, payload: Buffer.concat([strings(q), b(value)]), label: 'conflict block: write' },
    });
    ops.push({ conn: a, body: commitBody });
    return ops;
  });

/**
 * A directory too big for one reply: WRITE n children with long names under
 * a parent, then DIRECTORY (E2BIG once the list exceeds 4096 bytes) and
 * DIRECTORY_PART at offset 0, at a name boundary past the first chunk, in
 * the middle of a name and past the end; optionally inside a transaction.
 */
const bigDirBlockArb: fc.Arbitrary<RawOp[]> = fc
  .record({
    conn: fc.integer({ min: 0, max: 3 }),
    parent: fc.constantFrom('/a', '/b/c', 'x'),
    n: fc.integer({ min: 8, max: 22 }),
    nameLen: fc.constantFrom(150, 200, 255),
    inTx: weighted([[false, 3], [true, 1]]),
  })
  .map(({ conn, parent, n, nameLen, inTx }): RawOp[] => {
    const tx: TxRef = inTx ? TX_OPEN0 : { kind: 'none' };
    const names = Array.from({ length: n }, (_, i) => `${String(i).padStart(3, '0')}${'n'.repeat(nameLen - 3)}`);
    const listLen = names.length * (nameLen + 1);
    const ops: RawOp[] = [];
    if (inTx) ops.push({ conn, body: startBody });
    for (const name of names) {
      ops.push({
        conn,
        body: { tx, type: MessageType.WRITE, payload: strings(`${parent}/${name}`), label: 'big directory: child' },
      });
    }
    ops.push({ conn, body: { tx, type: MessageType.DIRECTORY, payload: strings(parent), label: 'big directory' } });
    for (const offset of [0, (nameLen + 1) * 15, (nameLen + 1) * 15 + 7, listLen, listLen + 10]) {
      ops.push({
        conn,
        body: {
          tx,
          type: MessageType.DIRECTORY_PART,
          payload: strings(parent, String(offset)),
          label: `big directory: offset ${offset} of ${listLen}`,
        },
      });
    }
    if (inTx) ops.push({ conn, body: commitBody });
    return ops;
  });

/** Many transactions open at once on one connection (quota edge for 4.17's count > N rule). */
const txFloodBlockArb: fc.Arbitrary<RawOp[]> = fc
  .record({ conn: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 9, max: 13 }) })
  .map(({ conn, n }): RawOp[] => Array.from({ length: n }, () => ({ conn, body: startBody })));

/**
 * Operation sequences over 2–4 connections: mostly single random ops, with
 * occasional blocks (conflicts, a big directory, many transactions). The connection index of each op is drawn from
 * 0..3 and reduced modulo the sequence's connection count, so shrinking the
 * count keeps the sequence valid. At most maxOps ops (a sequence that would
 * be longer is cut).
 */
export function opSequenceArb(options: SequenceOptions = {}): fc.Arbitrary<OpSequence> {
  const maxOps = options.maxOps ?? 60;
  const minOps = options.minOps ?? 1;
  // Lower connection indexes are more likely, so that transactions started
  // on a connection are often used and ended on it too.
  const connArb = weighted([[0, 5], [1, 3], [2, 2], [3, 1]]);
  const singleArb = fc.record({ conn: connArb, body: bodyArb }).map((op): RawOp[] => [op]);
  const reuse: fc.Arbitrary<OpBody> = reuseArb;
  const privilegedArb = fc.oneof({ weight: 4, arbitrary: quotaArb }, { weight: 1, arbitrary: reuse }).map((body): RawOp[] => [{ conn: 0, body }]);
  const chunkArb = fc.oneof(
    { weight: 120, arbitrary: singleArb },
    { weight: 6, arbitrary: fc.record({ conn: connArb, body: bigWriteArb }).map((op): RawOp[] => [op]) },
    { weight: 5, arbitrary: privilegedArb },
    { weight: 4, arbitrary: conflictBlockArb },
    { weight: 1, arbitrary: bigDirBlockArb },
    { weight: 1, arbitrary: txFloodBlockArb },
  );
  return fc
    .record({
      connections: fc.integer({ min: 2, max: 4 }),
      guestCount: weighted([[0, 1], [1, 2], [2, 3]]),
      // Guest connections are drawn as often as the first socket.
      guestConn: fc.array(fc.boolean(), { minLength: maxOps, maxLength: maxOps }),
      chunks: fc.array(chunkArb, { minLength: minOps, maxLength: maxOps, size: 'max' }),
    })
    .map(({ connections, guestCount, guestConn, chunks }): OpSequence => {
      const guests = GUEST_DOMIDS.slice(0, guestCount);
      const ops = chunks.flat().slice(0, maxOps).map(({ conn, body }, i): Op => {
        const toGuest = guests.length > 0 && guestConn[i] === true && conn === 0 && guestMaySend(body);
        return { conn: toGuest ? connections + (i % guests.length) : conn % connections, ...body };
      }).filter((op) => op.reintroduce === undefined || guests.includes(op.reintroduce as 3 | 7));
      return { connections, guests, ops };
    });
}
