/**
 * fast-check arbitraries for XenStore tests: paths, values, permission
 * lists, domids, requests, and operation sequences over several
 * connections (see ./operations.ts). Paths are drawn from a small fixed
 * set on purpose, so that random requests collide: the same node is
 * written, watched, removed and read inside transactions.
 */
import fc from 'fast-check';
import { MessageType as T } from '../wire/vocabulary.js';
import type { Operation } from './operations.js';

export interface PathOptions {
  /** Absolute paths are drawn under this node (default '/'). */
  root?: string;
  /** Guest domains whose home (`/local/domain/<id>`) paths are drawn too (default [1, 2]). */
  guests?: readonly number[];
}

const join = (parent: string, rest: string): string => (rest === '' ? parent : parent === '/' ? `/${rest}` : `${parent}/${rest}`);
const UNDER_ROOT = ['', 'a', 'a', 'a/b', 'a/b', 'a/b/c', 'a/c', 'b', 'b/a'];
const UNDER_HOME = ['', 'a', 'a/b', 'data', 'data/a', 'data/a/b'];

/** Absolute paths under the root, under each guest's home and under /shared. */
export function absolutePaths(options: PathOptions = {}): fc.Arbitrary<string> {
  const root = options.root ?? '/';
  const homes = (options.guests ?? [1, 2]).flatMap((id) => UNDER_HOME.map((p) => join(`/local/domain/${id}`, p)));
  return fc.constantFrom(...UNDER_ROOT.map((p) => join(root, p)), ...homes, '/shared', '/shared/a', '/shared/a/b');
}

/** Relative paths: a guest's resolve under its home, dom0's under /local/domain/0. */
export const relativePaths = (): fc.Arbitrary<string> => fc.constantFrom('a', 'a/b', 'data', 'data/a');

/** The special watch paths. */
export const specialPaths = (): fc.Arbitrary<string> => fc.constantFrom('@releaseDomain', '@introduceDomain');

/** Paths the daemon must refuse. */
export const invalidPaths = (): fc.Arbitrary<string> => fc.constantFrom('/a/', '/a//b', 'a b', '', '@a', '/a/@x');

/** Mostly valid absolute paths, some relative, special and invalid ones. */
export function paths(options: PathOptions = {}): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: absolutePaths(options) },
    { weight: 2, arbitrary: relativePaths() },
    { weight: 1, arbitrary: fc.oneof(specialPaths(), invalidPaths()) },
  );
}

/** Node values (text form: `|` is a NUL byte); one long enough to be cut anywhere when sent in parts. */
export const values = (): fc.Arbitrary<string> => fc.constantFrom('', 'v', 'w', 'x|y', 'z'.repeat(300));

export const tokens = (): fc.Arbitrary<string> => fc.constantFrom('t', 'u');

/** Domain ids: dom0, the guests, one more, and reserved or out-of-range ones now and then. */
export function domids(guests: readonly number[] = [1, 2]): fc.Arbitrary<number> {
  return fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, ...guests, 3) }, { weight: 1, arbitrary: fc.constantFrom(0x7ff5, 40000) });
}

/**
 * Permission lists as SET_PERMS takes them (`n0`, `r1`, ...), owner first;
 * a few malformed entries. With `streamable`, none naming a domid a
 * migration stream cannot carry (it has 16 bits for it; `r-1` is accepted
 * as 0xffffffff, and C xenstored truncates it across live update too).
 */
export function permissionLists(guests: readonly number[] = [1, 2], streamable = false): fc.Arbitrary<string[]> {
  const malformed = ['r0x1', 'b02', 'x1', 'r', 'r1a', 'w 2', ...(streamable ? [] : ['r-1'])];
  const entry = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom('n', 'r', 'w', 'b'), domids(guests)).map(([p, d]) => `${p}${d}`) },
    { weight: 1, arbitrary: fc.constantFrom(...malformed) },
  );
  return fc.array(entry, { minLength: 1, maxLength: 5 });
}

export interface Request {
  type: number;
  payload: string;
}

export interface RequestOptions extends PathOptions {
  /** Only what a migration stream carries, for properties across live update (see permissionLists). */
  streamable?: boolean;
}

/** One request of any kind the reference model answers, with collisions between paths on purpose. */
export function requests(options: RequestOptions = {}): fc.Arbitrary<Request> {
  const path = paths(options);
  const watchPath = fc.oneof(
    { weight: 8, arbitrary: fc.oneof(absolutePaths(options), fc.constantFrom('/', '/local', 'a', 'data')) },
    { weight: 2, arbitrary: path },
  );
  const guests = options.guests ?? [1, 2];
  const at = (type: number) => path.map((p) => ({ type, payload: `${p}|` }));
  return fc.oneof(
    { weight: 10, arbitrary: at(T.READ) },
    { weight: 20, arbitrary: fc.tuple(path, values()).map(([p, v]) => ({ type: T.WRITE, payload: `${p}|${v}` })) },
    { weight: 6, arbitrary: at(T.MKDIR) },
    { weight: 8, arbitrary: at(T.RM) },
    { weight: 4, arbitrary: at(T.DIRECTORY) },
    { weight: 2, arbitrary: fc.tuple(path, fc.constantFrom('0', '1', '2', '99', 'x')).map(([p, o]) => ({ type: T.DIRECTORY_PART, payload: `${p}|${o}|` })) },
    { weight: 4, arbitrary: at(T.GET_PERMS) },
    { weight: 10, arbitrary: fc.tuple(path, permissionLists(guests, options.streamable)).map(([p, ps]) => ({ type: T.SET_PERMS, payload: `${p}|${ps.map((e) => `${e}|`).join('')}` })) },
    {
      weight: 12,
      arbitrary: fc.tuple(watchPath, tokens(), fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('0', '1', '-1', 'x') }))
        .map(([p, t, d]) => ({ type: T.WATCH, payload: `${p}|${t}|${d === undefined ? '' : `${d}|`}` })),
    },
    { weight: 2, arbitrary: fc.tuple(path, tokens()).map(([p, t]) => ({ type: T.UNWATCH, payload: `${p}|${t}|` })) },
    { weight: 8, arbitrary: fc.constant({ type: T.TRANSACTION_START, payload: '|' }) },
    { weight: 8, arbitrary: fc.constantFrom('T|', 'T|', 'T|', 'F|', 'X|').map((p) => ({ type: T.TRANSACTION_END, payload: p })) },
    { weight: 1, arbitrary: fc.constant({ type: T.RESET_WATCHES, payload: '' }) },
    { weight: 1, arbitrary: fc.constant({ type: 20, payload: '' }) }, // an unknown type
  );
}

export interface OperationOptions extends RequestOptions {
  /** How many connections send (default 4: two dom0 sockets and the guests). */
  connections?: number;
  /**
   * operationSequences mixes in the guests' life cycles (domainLifeCycles):
   * their connections close at RELEASE, and the sender must attach a new
   * one after each INTRODUCE.
   */
  lifeCycle?: boolean;
}

/** One operation: a request on one connection, in one of its transactions or none. */
export function operations(options: OperationOptions = {}): fc.Arbitrary<Operation> {
  const conn = fc.nat({ max: (options.connections ?? 4) - 1 });
  return fc.record({
    conn,
    tx: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(0, 0, 1) }),
    endTx: fc.constantFrom(0, 0, 0, 1, null),
    req: requests(options),
  }).map(({ conn, tx, endTx, req }): Operation => ({ conn, tx: req.type === T.TRANSACTION_END ? endTx : tx, type: req.type, payload: req.payload }));
}

/**
 * A transaction session: START on one connection, requests of which some go
 * through the transaction and others (from any connection) do not, then END
 * — or, with `leaveOpen`, sometimes no END, so the transaction spans
 * whatever comes next (a live update).
 */
export function transactionBlocks(options: OperationOptions & { leaveOpen?: boolean } = {}): fc.Arbitrary<Operation[]> {
  const conn = fc.nat({ max: (options.connections ?? 4) - 1 });
  const ends = options.leaveOpen ? ['T|', 'T|', 'T|', 'F|', null] : ['T|', 'T|', 'T|', 'F|'];
  return fc.record({
    conn,
    steps: fc.array(fc.record({ inTx: fc.boolean(), conn, req: requests(options) }), { minLength: 1, maxLength: 8 }),
    end: fc.constantFrom(...ends),
  }).map(({ conn, steps, end }) => [
    { conn, tx: null, type: T.TRANSACTION_START, payload: '|' },
    ...steps.map((st): Operation => (st.inTx ? { conn, tx: 'last', type: st.req.type, payload: st.req.payload } : { conn: st.conn, tx: null, type: st.req.type, payload: st.req.payload })),
    ...(end === null ? [] : [{ conn, tx: 'last' as const, type: T.TRANSACTION_END, payload: end }]),
  ]);
}

/** INTRODUCE of a guest as a toolstack sends it: gfn 1, event channel 10 + domid. */
export function introduceOperation(conn: number, domid: number): Operation {
  return { conn, tx: null, type: T.INTRODUCE, payload: `${domid}|1|${10 + domid}|` };
}

/**
 * A guest domain's life cycle, sent by connection 0 (dom0): RELEASE, a few
 * requests meanwhile, then (mostly) INTRODUCE of the same domid — a new
 * domain that must inherit nothing from the old one, though nodes still
 * name it — and sometimes the home a toolstack gives it, and a rewrite of
 * some node. Now and then a
 * lone INTRODUCE or RELEASE from any connection instead (a reset, ENOENT,
 * EACCES from a guest).
 */
export function domainLifeCycles(options: OperationOptions = {}): fc.Arbitrary<Operation[]> {
  const guests = options.guests ?? [1, 2];
  const domid = fc.constantFrom(...guests);
  const conn = fc.nat({ max: (options.connections ?? 4) - 1 });
  const release = (c: number, d: number): Operation => ({ conn: c, tx: null, type: T.RELEASE, payload: `${d}|` });
  const home = (d: number): Operation[] => [
    { conn: 0, tx: null, type: T.WRITE, payload: `/local/domain/${d}|` },
    { conn: 0, tx: null, type: T.SET_PERMS, payload: `/local/domain/${d}|n${d}|` },
  ];
  // After the new domain came, dom0 may rewrite an old node (one naming the old domain keeps the entry stale).
  const rewrite = fc.option(absolutePaths(options).map((p): Operation => ({ conn: 0, tx: null, type: T.WRITE, payload: `${p}|w` })), { nil: undefined });
  const reuse = fc.record({ domid, meanwhile: fc.array(operations(options), { maxLength: 3 }), again: fc.constantFrom(true, true, true, false), home: fc.boolean(), rewrite })
    .map(({ domid: d, meanwhile, again, home: withHome, rewrite: w }) => [
      release(0, d), ...meanwhile, ...(again ? [introduceOperation(0, d), ...(withHome ? home(d) : []), ...(w ? [w] : [])] : []),
    ]);
  const lone = fc.tuple(conn, domid, fc.boolean()).map(([c, d, intro]) => [intro ? introduceOperation(c, d) : release(c, d)]);
  return fc.oneof({ weight: 4, arbitrary: reuse }, { weight: 1, arbitrary: lone });
}

/**
 * Sequences of single operations and transaction sessions (and, with
 * `lifeCycle`, domain life cycles), about `maxLength` operations long.
 */
export function operationSequences(options: OperationOptions & { maxLength?: number; leaveOpen?: boolean } = {}): fc.Arbitrary<Operation[]> {
  const maxChunks = Math.max(1, Math.floor((options.maxLength ?? 50) / 3));
  return fc.array(
    fc.oneof(
      { weight: 8, arbitrary: operations(options).map((o) => [o]) },
      { weight: 2, arbitrary: transactionBlocks(options) },
      ...(options.lifeCycle ? [{ weight: 1, arbitrary: domainLifeCycles(options) }] : []),
    ),
    { minLength: 1, maxLength: maxChunks, size: 'max' },
  ).map((chunks) => chunks.flat());
}
