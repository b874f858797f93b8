/**
 * A deliberately simple reference model of C xenstored's store, written
 * from the protocol reference (§4 paths, §6 permissions, §7 operations,
 * §8 watches, §9 transactions) and checked
 * against the C sources where the document is terse.
 *
 * Representation: one plain Map from absolute path to
 * { value, perms, children } (children in creation order). Nothing is
 * shared or interned; every change stores a fresh copy.
 *
 * Transactions follow the "snapshot at first touch" rule: the first time
 * a transaction looks at a path (read, existence check, parent walk) the
 * global record (or its absence) is copied; afterwards the copy is used.
 * Conflicts need no generation numbers: a transaction is marked dirty for
 * a path when the global record at that path is changed after the
 * transaction touched it. At commit the transaction fails with EAGAIN if a
 * touched path is dirty — except for paths that were absent when touched,
 * which conflict exactly when they exist at commit (C compares generation
 * numbers, and "absent" has one fixed generation).
 *
 * Memory accounting is recounted from scratch (memory()): what C charges a
 * domain for the nodes it owns and its connections' watches.
 *
 * Out of scope (never produced by the property test): domain life-cycle
 * and special events, quotas other than transactions and permission
 * entries, path-length limits, the memory quota, transactions' private
 * copies in memory accounting, DIRECTORY E2BIG.
 *
 * Requests and replies use the text forms of ./operations.ts: payloads
 * with `|` for NUL; replies 'OK', an error name, or '=' + payload.
 */
import { DOMID_ANY, DOMID_FIRST_RESERVED, MessageType as T } from '../wire/vocabulary.js';

export type Version = 'master' | '4.17';

const R = 1;
const W = 2;
const OWNER = 8;

interface Perm {
  readonly bits: number; // R/W
  readonly id: number; // uint32
}
interface MNode {
  readonly value: string;
  readonly perms: readonly Perm[];
  readonly children: readonly string[];
}
type Rec = MNode | null;

interface MWatch {
  readonly path: string;
  readonly token: string;
  /** Prefix stripped from event paths (home + '/'), or '' for absolute watches. */
  readonly strip: string;
  readonly depth: number | undefined;
}

type Mode = 'subtree' | 'exact';

interface Touch {
  readonly orig: Rec; // global record when first touched
  cur: Rec; // this transaction's view
  modified: boolean;
  fire: Mode | undefined;
  dirty: boolean;
}

interface MTx {
  readonly id: number;
  readonly touched: Map<string, Touch>;
}

export interface MConn {
  readonly name: string;
  readonly domid: number;
  readonly priv: boolean;
  readonly home: string;
  readonly watches: MWatch[];
  readonly txs: Map<number, MTx>;
  nextTx: number;
}

export interface ModelReply {
  readonly text: string;
  /** Events per connection name, in order (for the sender: those before its reply). */
  readonly events: Map<string, string[]>;
  /** Events the sender gets after its reply (WATCH's initial event). */
  readonly after: string[];
}

class Fail extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}
const fail = (code: string): never => {
  throw new Fail(code);
};

/** The requests the model answers; others get ENOSYS. */
const HANDLED = new Set<number>([
  T.CONTROL, T.DIRECTORY, T.READ, T.GET_PERMS, T.WATCH, T.UNWATCH, T.TRANSACTION_START, T.TRANSACTION_END,
  T.WRITE, T.MKDIR, T.RM, T.SET_PERMS, T.RESET_WATCHES, T.DIRECTORY_PART,
]);

// --- small helpers --------------------------------------------------------------

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
function join(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}
/** The NUL-terminated strings of a payload (trailing bytes without NUL ignored). */
function strings(p: string): string[] {
  const parts = p.split('\0');
  parts.pop();
  return parts;
}
function nuls(p: string): number {
  return p.split('\0').length - 1;
}
/** Exactly one NUL, at the end. */
function oneArg(p: string): string | undefined {
  return p.length > 0 && p.indexOf('\0') === p.length - 1 ? p.slice(0, -1) : undefined;
}
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) | 0 : 0;
}

/** strtol(s, &end, 0) accepting only a complete number, truncated to 32 bits unsigned. */
function parseDomid(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const digits = m[2]!;
  let v = /^0[xX]/.test(digits) ? BigInt(digits) : digits.length > 1 && digits[0] === '0' ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  if (m[1] === '-') v = -v;
  return Number(BigInt.asUintN(32, v));
}

function permText(p: Perm): string {
  return `${'nrwb'[p.bits]}${p.id | 0}`;
}

// --- the model --------------------------------------------------------------------

export class Model {
  readonly nodes = new Map<string, MNode>();
  readonly conns: MConn[] = [];
  /** 4.17: permission lists of the two special paths (not nodes there). */
  private readonly specialPerms = new Map<string, readonly Perm[]>();
  private readonly master: boolean;

  // Per request:
  private out = new Map<string, string[]>();
  private seen = new Map<string, Set<string>>();

  constructor(readonly version: Version) {
    this.master = version === 'master';
    const n0: Perm[] = [{ bits: 0, id: 0 }];
    this.nodes.set('/', { value: '', perms: n0, children: ['tool'] });
    this.nodes.set('/tool', { value: '', perms: n0, children: ['xenstored'] });
    this.nodes.set('/tool/xenstored', { value: '', perms: n0, children: [] });
    if (this.master) {
      // Hidden nodes, not children of "/".
      this.nodes.set('@releaseDomain', { value: '', perms: [{ bits: 0, id: 0 }, { bits: R, id: DOMID_ANY }], children: [] });
      this.nodes.set('@introduceDomain', { value: '', perms: n0, children: [] });
    } else {
      this.specialPerms.set('@releaseDomain', n0);
      this.specialPerms.set('@introduceDomain', n0);
    }
  }

  addConn(name: string, domid: number, priv: boolean): MConn {
    const c: MConn = { name, domid, priv, home: `/local/domain/${domid}`, watches: [], txs: new Map(), nextTx: 1 };
    this.conns.push(c);
    return c;
  }

  conn(name: string): MConn {
    return this.conns.find((c) => c.name === name)!;
  }

  /**
   * Bytes C charges `domid` outside transactions: per node it owns, the
   * record (header, 8 per permission entry, value, child names with their
   * NULs) plus its key (the path); per watch of its connections, path and token.
   */
  memory(domid: number): number {
    const header = this.master ? 16 : 24;
    let bytes = 0;
    for (const [path, n] of this.nodes) {
      if (n.perms[0]!.id !== domid) continue;
      bytes += header + 8 * n.perms.length + n.value.length + n.children.reduce((sum, c) => sum + c.length + 1, 0) + path.length;
    }
    for (const c of this.conns) if (c.domid === domid) for (const w of c.watches) bytes += w.path.length + w.token.length;
    return bytes;
  }

  // --- permissions (§6.2) ---

  /** A non-owner entry naming a domain that does not exist never matches. */
  private exists(id: number): boolean {
    return id < DOMID_FIRST_RESERVED || (this.master && id === DOMID_ANY);
  }

  private matches(c: MConn, id: number): boolean {
    return id === c.domid || (this.master && id === DOMID_ANY);
  }

  private permFor(c: MConn, perms: readonly Perm[]): number {
    if (c.priv || this.matches(c, perms[0]!.id)) return R | W | OWNER;
    for (const e of perms.slice(1)) if (this.exists(e.id) && this.matches(c, e.id)) return e.bits;
    return perms[0]!.bits;
  }

  // --- paths (§4) ---

  private validChars(p: string): boolean {
    return /^[A-Za-z0-9\-/_@]*$/.test(p);
  }

  private canon(c: MConn, raw: string | undefined, allowSpecial: boolean): string {
    if (raw === undefined) return fail('EINVAL');
    if (this.master) {
      if (!this.validChars(raw) || (raw.startsWith('@') && !allowSpecial)) fail('EINVAL');
      const abs = raw.startsWith('/') || raw.startsWith('@') ? raw : `${c.home}/${raw}`;
      if ((abs.endsWith('/') && abs !== '/') || abs.includes('//')) fail('EINVAL');
      return abs;
    }
    const abs = raw.startsWith('/') || raw.startsWith('@') ? raw : `${c.home}/${raw}`;
    if (!abs.startsWith('/') || (abs.endsWith('/') && abs !== '/') || abs.includes('//') || !this.validChars(abs)) fail('EINVAL');
    return abs;
  }

  // --- views: live or through a transaction ---

  private read(tx: MTx | undefined, path: string): Rec {
    if (!tx) return this.nodes.get(path) ?? null;
    let t = tx.touched.get(path);
    if (!t) {
      const rec = this.nodes.get(path) ?? null;
      t = { orig: rec, cur: rec, modified: false, fire: undefined, dirty: false };
      tx.touched.set(path, t);
    }
    return t.cur;
  }

  private write(tx: MTx | undefined, path: string, rec: Rec): void {
    if (tx) {
      this.read(tx, path);
      const t = tx.touched.get(path)!;
      t.cur = rec;
      t.modified = true;
      return;
    }
    this.setGlobal(path, rec);
  }

  /** Changes the live tree; every open transaction that touched the path is now dirty there. */
  private setGlobal(path: string, rec: Rec): void {
    if (rec) this.nodes.set(path, rec);
    else this.nodes.delete(path);
    for (const c of this.conns) for (const tx of c.txs.values()) {
      const t = tx.touched.get(path);
      if (t) t.dirty = true;
    }
  }

  /** fire_watches: immediately, or noted in the transaction (subtree beats exact). */
  private fire(tx: MTx | undefined, path: string, mode: Mode, rec: Rec, oldPerms: readonly Perm[] | null): void {
    if (tx) {
      const t = tx.touched.get(path)!;
      if (t.fire === undefined || mode === 'subtree') t.fire = mode;
      return;
    }
    this.deliver(path, mode, rec, oldPerms);
  }

  /** §8.3 and C's watch_permitted(): old perms, the node, or its parent must be readable. */
  private mayObserve(c: MConn, path: string, rec: Rec, oldPerms: readonly Perm[] | null): boolean {
    if (oldPerms && this.permFor(c, oldPerms) & R) return true;
    const node = rec ?? this.nodes.get(path);
    if (!node) return false;
    if (this.permFor(c, node.perms) & R) return true;
    const parent = this.nodes.get(parentOf(path));
    return parent !== undefined && (this.permFor(c, parent.perms) & R) !== 0;
  }

  private watchMatches(w: MWatch, path: string, mode: Mode): boolean {
    if (mode === 'exact') return w.path === path;
    let depth: number;
    if (w.path === '/') {
      if (!path.startsWith('/')) return false;
      depth = path === '/' ? 0 : path.split('/').length - 1;
    } else if (path === w.path) {
      depth = 0;
    } else if (path.startsWith(`${w.path}/`)) {
      depth = path.slice(w.path.length).split('/').length - 1;
    } else {
      return false;
    }
    return w.depth === undefined || depth <= w.depth;
  }

  private deliver(path: string, mode: Mode, rec: Rec, oldPerms: readonly Perm[] | null): void {
    for (const c of this.conns) {
      if (c.watches.length === 0 || !this.mayObserve(c, path, rec, oldPerms)) continue;
      for (const w of c.watches) if (this.watchMatches(w, path, mode)) this.emit(c, `${path.slice(w.strip.length)}\0${w.token}\0`);
    }
  }

  /** Queues an event; identical non-special events already queued in this request are dropped. */
  private emit(c: MConn, payload: string): void {
    const seen = this.seen.get(c.name) ?? new Set<string>();
    this.seen.set(c.name, seen);
    if (!payload.startsWith('@') && seen.has(payload)) return;
    seen.add(payload);
    const list = this.out.get(c.name) ?? [];
    list.push(payload.replace(/\0/g, '|'));
    this.out.set(c.name, list);
  }

  // --- lookups with information hiding (§6.4) ---

  /** The first existing ancestor decides between ENOENT (grants any bit of `perm`) and EACCES. */
  private errnoFromParents(c: MConn, tx: MTx | undefined, path: string, code: string, perm: number): string {
    let name = path;
    let rec: Rec = null;
    do {
      name = parentOf(name);
      rec = this.read(tx, name);
    } while (!rec && name !== '/');
    return rec && this.permFor(c, rec.perms) & perm ? code : 'EACCES';
  }

  /** The node if `c` holds every bit of `perm`; else EACCES or ENOENT. */
  private lookup(c: MConn, tx: MTx | undefined, path: string, perm: number): MNode {
    const rec = this.read(tx, path);
    if (rec && (this.permFor(c, rec.perms) & perm) === perm) return rec;
    return fail(this.errnoFromParents(c, tx, path, rec ? 'EACCES' : 'ENOENT', perm));
  }

  /** lookup, but a missing node (ENOENT) gives null instead of an error. */
  private lookupOrMissing(c: MConn, tx: MTx | undefined, path: string, perm: number): MNode | null {
    try {
      return this.lookup(c, tx, path, perm);
    } catch (e) {
      if (e instanceof Fail && e.code === 'ENOENT') return null;
      throw e;
    }
  }

  // --- operations (§7) ---

  /** Creates `path` and its missing ancestors below the nearest existing one (§6.6). */
  private create(c: MConn, tx: MTx | undefined, path: string, value: string): void {
    const missing = [path];
    let anc = parentOf(path);
    let ancRec = this.read(tx, anc);
    while (!ancRec) {
      missing.unshift(anc);
      anc = parentOf(anc);
      ancRec = this.read(tx, anc);
    }
    const perms = c.priv ? ancRec.perms : [{ bits: ancRec.perms[0]!.bits, id: c.domid }, ...ancRec.perms.slice(1)];
    missing.forEach((p, i) => {
      const next = missing[i + 1];
      this.write(tx, p, { value: next ? '' : value, perms, children: next ? [baseOf(next)] : [] });
    });
    this.write(tx, anc, { ...ancRec, children: [...ancRec.children, baseOf(missing[0]!)] });
  }

  private opWrite(c: MConn, tx: MTx | undefined, payload: string): string {
    const nul = payload.indexOf('\0');
    if (nul < 0) fail('EINVAL');
    const path = this.canon(c, payload.slice(0, nul), false);
    const value = payload.slice(nul + 1);
    const rec = this.lookupOrMissing(c, tx, path, W);
    if (rec) this.write(tx, path, { ...rec, value });
    else this.create(c, tx, path, value);
    this.fire(tx, path, 'subtree', this.read(tx, path), null);
    return 'OK';
  }

  private opMkdir(c: MConn, tx: MTx | undefined, payload: string): string {
    const path = this.canon(c, oneArg(payload), false);
    if (!this.lookupOrMissing(c, tx, path, W)) {
      this.create(c, tx, path, '');
      this.fire(tx, path, 'subtree', this.read(tx, path), null);
    }
    return 'OK';
  }

  private opRm(c: MConn, tx: MTx | undefined, payload: string): string {
    const path = this.canon(c, oneArg(payload), false);
    const rec = this.lookupOrMissing(c, tx, path, W);
    if (!rec) {
      // Missing: fine when the parent exists (no permission check on it).
      return this.read(tx, parentOf(path)) ? 'OK' : fail('ENOENT');
    }
    if (path === '/') fail('EINVAL');
    // In a transaction the parent may be gone from the transaction's view while the
    // node, never touched before, is still live: C's rm_node() answers EINVAL.
    const parent = this.read(tx, parentOf(path));
    if (!parent) return fail('EINVAL');
    // Like C's walk_node_tree(): a node is read (first touched) on the way down
    // and deleted, with its event, on the way up (children before parents). In a
    // transaction a child named by a stale copy may be gone: C then stops with
    // EIO, leaving what was already deleted deleted.
    const remove = (p: string): void => {
      let node = this.read(tx, p);
      if (!node) return fail('EIO');
      for (const name of node.children) {
        remove(join(p, name));
        // C's rm_from_parent(): the (doomed) parent is rewritten without the entry.
        node = { ...node, children: node.children.filter((n) => n !== name) };
        this.write(tx, p, node);
      }
      this.write(tx, p, null);
      this.fire(tx, p, p === path ? 'subtree' : 'exact', node, null);
    };
    remove(path);
    // In a transaction the parent's copy may predate the node (created by someone
    // else after the transaction read the parent): C's delete_child() finds no
    // entry, reports corruption and fails with EIO after the subtree is gone.
    if (!parent.children.includes(baseOf(path))) fail('EIO');
    this.write(tx, parentOf(path), { ...parent, children: parent.children.filter((n) => n !== baseOf(path)) });
    return 'OK';
  }

  private opSetPerms(c: MConn, tx: MTx | undefined, payload: string): string {
    const count = nuls(payload) - 1;
    if (count < 1) fail('EINVAL');
    if (!c.priv && (this.master ? count >= 5 : count > 5)) fail('ENOSPC');
    const args = strings(payload);
    const perms: Perm[] = args.slice(1, 1 + count).map((s) => {
      const bits = 'nrwb'.indexOf(s.charAt(0));
      const id = parseDomid(s.slice(1));
      if (s.length === 0 || bits < 0 || id === undefined) return fail('EINVAL');
      return { bits, id };
    });
    if (!this.exists(perms[0]!.id)) fail('ENOENT'); // the owner's domain must exist
    const raw = args[0]!;
    if (!this.master && raw.startsWith('@')) {
      const current = this.specialPerms.get(raw);
      if (!current) fail('EINVAL');
      if ((this.permFor(c, current!) & (W | OWNER)) !== (W | OWNER)) fail('EACCES');
      this.specialPerms.set(raw, perms);
      return 'OK';
    }
    const path = this.canon(c, raw, this.master);
    const rec = this.lookup(c, tx, path, W | OWNER);
    if (!c.priv && perms[0]!.id !== rec.perms[0]!.id) fail('EPERM');
    const updated = { ...rec, perms };
    this.write(tx, path, updated);
    this.fire(tx, path, 'subtree', updated, rec.perms);
    return 'OK';
  }

  private opRead(c: MConn, tx: MTx | undefined, payload: string): string {
    return `=${this.lookup(c, tx, this.canon(c, oneArg(payload), false), R).value}`;
  }

  private opDirectory(c: MConn, tx: MTx | undefined, payload: string): string {
    const node = this.lookup(c, tx, this.canon(c, oneArg(payload), false), R);
    return `=${node.children.map((n) => `${n}\0`).join('')}`;
  }

  /** Reply with the generation replaced by "G" (the model has none). */
  private opDirectoryPart(c: MConn, tx: MTx | undefined, payload: string): string {
    if (nuls(payload) !== 2) fail('EINVAL');
    const [rawPath, rawOffset] = strings(payload);
    const node = this.lookup(c, tx, this.canon(c, rawPath, false), R);
    const list = node.children.map((n) => `${n}\0`).join('');
    const offset = atoi(rawOffset!) >>> 0;
    const gen = 'G'; // compared after normalisation; its length is irrelevant for small lists
    if (offset >= list.length) return `=${gen}\0\0`;
    // (small lists only: always fits, so the rest of the list plus the end marker)
    return `=${gen}\0${list.slice(offset)}\0`;
  }

  private opGetPerms(c: MConn, tx: MTx | undefined, payload: string): string {
    const node = this.lookup(c, tx, this.canon(c, oneArg(payload), this.master), R);
    return `=${node.perms.map((p) => `${permText(p)}\0`).join('')}`;
  }

  private opWatch(c: MConn, payload: string): { text: string; initial?: string } {
    const args = strings(payload);
    let depth: number | undefined;
    if (args.length === 3 && this.master) {
      depth = atoi(args[2]!);
      if (depth < 0) fail('EINVAL');
    } else if (args.length !== 2) {
      fail('EINVAL');
    }
    const raw = args[0]!;
    let path: string;
    let relative: boolean;
    if (!this.master && raw.startsWith('@')) {
      if (raw.length > 2048) fail('EINVAL');
      path = raw;
      relative = false;
    } else {
      relative = !raw.startsWith('/') && !raw.startsWith('@');
      path = this.canon(c, raw, true);
    }
    const token = args[1]!;
    if (c.watches.some((w) => w.path === path && w.token === token)) fail('EEXIST');
    if (!c.priv && (this.master ? c.watches.length + 1 >= 128 : c.watches.length > 128)) fail(this.master ? 'ENOSPC' : 'E2BIG');
    const w: MWatch = { path, token, strip: relative ? `${c.home}/` : '', depth };
    c.watches.push(w);
    return { text: 'OK', initial: `${path.slice(w.strip.length)}|${token}|` };
  }

  private opUnwatch(c: MConn, payload: string): string {
    const args = strings(payload);
    if (args.length !== 2) fail('EINVAL');
    const raw = args[0]!;
    const path = this.master ? this.canon(c, raw, true) : raw.startsWith('/') || raw.startsWith('@') ? raw : `${c.home}/${raw}`;
    const i = c.watches.findIndex((w) => w.path === path && w.token === args[1]);
    if (i < 0) fail('ENOENT');
    c.watches.splice(i, 1);
    return 'OK';
  }

  private opTxStart(c: MConn, tx: MTx | undefined): string {
    if (tx) fail('EBUSY');
    if (!c.priv && (this.master ? c.txs.size + 1 >= 10 : c.txs.size > 10)) fail('ENOSPC');
    let id = c.nextTx;
    while (id === 0 || c.txs.has(id)) id = (id + 1) >>> 0;
    c.nextTx = (id + 1) >>> 0;
    c.txs.set(id, { id, touched: new Map() });
    return `=${id}\0`;
  }

  private opTxEnd(c: MConn, tx: MTx | undefined, payload: string): string {
    const arg = oneArg(payload);
    if (arg !== 'T' && arg !== 'F') fail('EINVAL');
    if (!tx) return fail('ENOENT');
    c.txs.delete(tx.id);
    if (arg === 'F') return 'OK';
    for (const [path, t] of tx.touched) {
      const conflict = t.orig ? t.dirty : this.nodes.has(path);
      if (conflict) fail('EAGAIN');
    }
    // As C's finalize_transaction(): per node in first-touch order, write it, then fire its event.
    for (const [path, t] of tx.touched) {
      if (t.modified) this.setGlobal(path, t.cur);
      if (t.fire) this.deliver(path, t.fire, null, t.orig ? t.orig.perms : null);
    }
    return 'OK';
  }

  // --- the request pipeline (§1.5) ---

  request(connName: string, type: number, payloadText: string, txId: number): ModelReply {
    const c = this.conn(connName);
    const payload = payloadText.replace(/\|/g, '\0');
    this.out = new Map();
    this.seen = new Map();
    let text: string;
    let initial: string | undefined;
    try {
      if (!HANDLED.has(type)) fail('ENOSYS');
      if (type === T.CONTROL && !c.priv) fail('EACCES');
      let tx: MTx | undefined;
      if (type !== T.WATCH && type !== T.UNWATCH && txId !== 0) {
        tx = c.txs.get(txId);
        if (!tx) fail('ENOENT');
      }
      switch (type) {
        case T.READ: text = this.opRead(c, tx, payload); break;
        case T.WRITE: text = this.opWrite(c, tx, payload); break;
        case T.MKDIR: text = this.opMkdir(c, tx, payload); break;
        case T.RM: text = this.opRm(c, tx, payload); break;
        case T.DIRECTORY: text = this.opDirectory(c, tx, payload); break;
        case T.DIRECTORY_PART: text = this.opDirectoryPart(c, tx, payload); break;
        case T.GET_PERMS: text = this.opGetPerms(c, tx, payload); break;
        case T.SET_PERMS: text = this.opSetPerms(c, tx, payload); break;
        case T.WATCH: ({ text, initial } = this.opWatch(c, payload)); break;
        case T.UNWATCH: text = this.opUnwatch(c, payload); break;
        case T.TRANSACTION_START: text = this.opTxStart(c, tx); break;
        case T.TRANSACTION_END: text = this.opTxEnd(c, tx, payload); break;
        case T.RESET_WATCHES:
          c.watches.length = 0;
          c.txs.clear();
          text = 'OK';
          break;
        default: text = fail('ENOSYS');
      }
    } catch (e) {
      if (!(e instanceof Fail)) throw e;
      text = e.code;
    }
    const rendered = text === 'OK' || !text.startsWith('=') ? text : text.replace(/\0/g, '|');
    return { text: rendered, events: this.out, after: initial ? [initial] : [] };
  }
}
