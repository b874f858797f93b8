/**
 * A deliberately simple reference model of C xenstored's store, written
 * from the protocol reference (§4 paths, §6 permissions, §7 operations,
 * §8 watches, §9 transactions) and checked
 * against the C sources where the document is terse.
 *
 * Representation: one plain Map from absolute path to
 * { value, perms, children, gen } (children in creation order). Nothing is
 * shared or interned; every change stores a fresh copy.
 *
 * Generations (C's `generation`): one global counter, raised by one before
 * it is given to something: to every node written or deleted (inside a
 * transaction too, and again to every node a commit writes), to every
 * transaction started. A write refused by the memory quota has raised it
 * already. Nothing else raises it.
 *
 * Domains (C's `struct domain`): xenstored's object for a domid, created
 * with the counter's current value (not raised) when it is first needed:
 * INTRODUCE, SET_PERMS naming a domain the hypervisor has (every domid
 * below DOMID_FIRST_RESERVED), a node created for an owner without one, a
 * commit that changed an owner's node count. RELEASE deletes it, after
 * removing every node the domain owns (each with everything below it,
 * watch events as for RM; a node that cannot go, the root, stays with what
 * is below) and, in master, every permission entry naming it.
 *
 * Stale entries (C's chk_domain_generation, XSA-322): a non-owner entry
 * (not master's DOMID_ANY) is ignored when no object exists for its domid,
 * or the object is younger than the node: `domain.gen > node.gen` (so a
 * domain whose object is created with no generation raised since the
 * node's write is *not* younger: `<=` keeps the entry). A node is always
 * seen with its stale entries marked ignored; whatever is written back (a
 * rewrite, a child's inherited list, a transaction copy) keeps the marks
 * and is judged again at its new generation; a commit copies the marks
 * as they are. A mark is never cleared. SET_PERMS marks entries naming a
 * domain the hypervisor does not have.
 *
 * Transactions follow the "snapshot at first touch" rule: the first time
 * a transaction looks at a path (read, existence check, parent walk) the
 * global record (or its absence) is copied; afterwards the copy is used.
 * A commit conflicts (EAGAIN) when a touched path's global generation is
 * not the one first seen (absent counts as one fixed generation).
 *
 * Memory accounting (C's domain_memory_add), predicted from this state
 * alone by memory(): a domain is charged for each node it owns — record
 * header (24 bytes in 4.17, 16 in master), 8 per permission entry, value,
 * child names with their NULs, and the path — for each watch of its
 * connections (path and token), and for each transaction copy its
 * connections hold (the same record size, under the key `<tx gen>/<path>`).
 * A domain without an object is charged nothing. With a memory quota:
 * a node write is refused with EIO when the charged domain (the owner;
 * in a transaction the caller) would reach the quota, its old record
 * refunded first (4.17: any caller, never for dom0; master: guest callers
 * only); the request then changes nothing (a transaction it ran in is
 * poisoned: its commit answers ENOMEM). WATCH is refused with ENOMEM the
 * same way, for the watch's bytes. Output queued for a guest's ring is
 * charged too, 16 header bytes plus its payload, until it is written (after
 * each request): a reply longer than 16 bytes is replaced by ENOMEM, and an
 * event of any size dropped, when the guest's memory plus it and its header
 * would reach the quota. A commit's events are judged against the output
 * queued before it and charged once all are judged (the simulator's known
 * limit; C charges each as it queues it).
 *
 * Out of scope (never produced by the property test): quotas other than
 * transactions, permission entries and memory, path-length limits,
 * DIRECTORY E2BIG, RESUME, SET_TARGET, domains the hypervisor destroys,
 * RELEASE of a domain owning "/" (C 4.17 then deletes its whole tree).
 *
 * Requests and replies use the text forms of ./operations.ts: payloads
 * with `|` for NUL; replies 'OK', an error name, or '=' + payload.
 */
import { DOMID_ANY, DOMID_FIRST_RESERVED, MessageType as T } from '../wire/vocabulary.js';

export type Version = 'master' | '4.17';

export interface ModelOptions {
  /** The memory quota in bytes (0: none; C's default otherwise). */
  memoryQuota?: number;
}

/** C's default memory quota per domain. */
const DEFAULT_MEMORY_QUOTA = 2621440;
/** Replies up to this many bytes are never refused (C's fixed reply buffer); also the header size charged. */
const FIXED_REPLY = 16;
/** A message header's bytes, charged with every queued message. */
const HEADER = 16;

const R = 1;
const W = 2;
const OWNER = 8;

interface Perm {
  readonly bits: number; // R/W
  readonly id: number; // uint32
  /** C's XS_PERM_IGNORE: the entry is stale and matches nobody. */
  readonly ignore: boolean;
}
interface MNode {
  readonly value: string;
  readonly perms: readonly Perm[];
  readonly children: readonly string[];
  readonly gen: number;
}
type Rec = MNode | null;
/** A record about to be written: its generation is given by the write. */
type NewRec = Omit<MNode, 'gen'> | null;

/** xenstored's object for a domain. */
interface MDomain {
  /** The generation counter when the object was created. */
  readonly gen: number;
  introduced: boolean;
}

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
}

interface MTx {
  readonly id: number;
  /** The generation it started with (its copies' key prefix). */
  readonly gen: number;
  touched: Map<string, Touch>;
  /** Domains whose node count it changed (C's changed_domains). */
  readonly owners: Set<number>;
  /** A refused write poisoned it: the commit answers ENOMEM. */
  failed: boolean;
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
  T.WRITE, T.MKDIR, T.RM, T.SET_PERMS, T.RESET_WATCHES, T.DIRECTORY_PART, T.INTRODUCE, T.RELEASE,
]);
/** Requests only privileged connections may make. */
const PRIVILEGED = new Set<number>([T.CONTROL, T.INTRODUCE, T.RELEASE]);

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

/** Bytes of a record as C stores it, with a key of `keyLength`. */
function recordBytes(header: number, rec: Omit<MNode, 'gen'>, keyLength: number): number {
  return header + 8 * rec.perms.length + rec.value.length + rec.children.reduce((sum, c) => sum + c.length + 1, 0) + keyLength;
}

// --- the model --------------------------------------------------------------------

export class Model {
  readonly nodes = new Map<string, MNode>();
  readonly conns: MConn[] = [];
  /** xenstored's domain objects by domid. */
  readonly domains = new Map<number, MDomain>();
  /** How often a permission entry naming the caller was passed over as stale (for generator statistics). */
  staleMatches = 0;
  /** The global generation counter: the last value given out. */
  private generation: number;
  /** 4.17: permission lists of the two special paths (not nodes there). */
  private readonly specialPerms = new Map<string, readonly Perm[]>();
  private readonly master: boolean;
  private readonly header: number;
  private readonly memoryQuota: number;

  // Per request:
  private out = new Map<string, string[]>();
  private seen = new Map<string, Set<string>>();
  /**
   * Output queued for guest connections during this request, charged to
   * their domains (C's send_reply/send_event); the daemon writes it out
   * after each request, so it starts at nothing.
   */
  private pending = new Map<MConn, number>();
  /** While a commit fires its events: they are judged, then charged all together once the commit is done. */
  private batched: [MConn, number][] | undefined;
  private saved: { nodes: Map<string, MNode>; touched: Map<MTx, Map<string, Touch>> } | undefined;

  constructor(readonly version: Version, options: ModelOptions = {}) {
    this.master = version === 'master';
    this.header = this.master ? 16 : 24;
    this.memoryQuota = options.memoryQuota ?? DEFAULT_MEMORY_QUOTA;
    const n0: Perm[] = [{ bits: 0, id: 0, ignore: false }];
    // Generations 1-3 (and 4-5, master's special nodes) went to the initial nodes.
    this.nodes.set('/', { value: '', perms: n0, children: ['tool'], gen: 1 });
    this.nodes.set('/tool', { value: '', perms: n0, children: ['xenstored'], gen: 2 });
    this.nodes.set('/tool/xenstored', { value: '', perms: n0, children: [], gen: 3 });
    if (this.master) {
      // Hidden nodes, not children of "/".
      this.nodes.set('@releaseDomain', { value: '', perms: [n0[0]!, { bits: R, id: DOMID_ANY, ignore: false }], children: [], gen: 4 });
      this.nodes.set('@introduceDomain', { value: '', perms: n0, children: [], gen: 5 });
    } else {
      this.specialPerms.set('@releaseDomain', n0);
      this.specialPerms.set('@introduceDomain', n0);
    }
    this.generation = this.master ? 5 : 3;
    this.domains.set(0, { gen: 0, introduced: true });
  }

  /**
   * A connection: a dom0 socket (`priv`), or a guest's ring, whose domain
   * is then taken as introduced now (without the INTRODUCE request's event).
   */
  addConn(name: string, domid: number, priv: boolean): MConn {
    if (!priv) this.domainObject(domid).introduced = true;
    return this.openConn(name, domid, priv);
  }

  private openConn(name: string, domid: number, priv: boolean): MConn {
    const c: MConn = { name, domid, priv, home: `/local/domain/${domid}`, watches: [], txs: new Map(), nextTx: 1 };
    this.conns.push(c);
    return c;
  }

  /** The connection called `name` (a released guest has none until it is introduced again). */
  conn(name: string): MConn {
    const c = this.conns.find((x) => x.name === name);
    if (!c) throw new Error(`the model has no connection ${name}`);
    return c;
  }

  hasConn(name: string): boolean {
    return this.conns.some((c) => c.name === name);
  }

  /** Bytes C charges `domid` (see the header); 0 when xenstored has no object for it. */
  memory(domid: number): number {
    if (!this.domains.has(domid)) return 0;
    let bytes = 0;
    for (const [path, n] of this.nodes) if (n.perms[0]!.id === domid) bytes += recordBytes(this.header, n, path.length);
    for (const c of this.conns) {
      if (c.domid !== domid) continue;
      for (const w of c.watches) bytes += w.path.length + w.token.length;
      for (const tx of c.txs.values()) bytes += this.copiesBytes(tx);
      bytes += this.pending.get(c) ?? 0;
    }
    return bytes;
  }

  private copiesBytes(tx: MTx): number {
    let bytes = 0;
    for (const [path, t] of tx.touched) if (t.cur) bytes += recordBytes(this.header, t.cur, this.copyKey(tx, path));
    return bytes;
  }

  private copyKey(tx: MTx, path: string): number {
    return `${tx.gen}/${path}`.length;
  }

  // --- domains and stale entries ---

  /** The hypervisor has every domid below the reserved ones. */
  private hypervisorHas(id: number): boolean {
    return id < DOMID_FIRST_RESERVED;
  }

  private domainObject(domid: number): MDomain {
    let d = this.domains.get(domid);
    if (!d) this.domains.set(domid, (d = { gen: this.generation, introduced: false }));
    return d;
  }

  /** C's find_or_alloc_existing_domain. */
  private existingDomainObject(domid: number): void {
    if (this.hypervisorHas(domid)) this.domainObject(domid);
  }

  /** C's chk_domain_generation failing: the entry matches nobody on a node of generation `gen`. */
  private stale(e: Perm, gen: number): boolean {
    if (e.ignore) return true;
    if (this.master && e.id === DOMID_ANY) return false;
    const d = this.domains.get(e.id);
    return !d || d.gen > gen;
  }

  /** The entries stale at generation `gen` marked (the owner never is). */
  private marked(perms: readonly Perm[], gen: number): readonly Perm[] {
    return perms.map((e, i) => (i > 0 && !e.ignore && this.stale(e, gen) ? { ...e, ignore: true } : e));
  }

  /** A node as every reader sees it. */
  private seenRec(rec: Rec): Rec {
    return rec && { ...rec, perms: this.marked(rec.perms, rec.gen) };
  }

  // --- permissions (§6.2) ---

  private matches(c: MConn, id: number): boolean {
    return id === c.domid || (this.master && id === DOMID_ANY);
  }

  private permFor(c: MConn, perms: readonly Perm[]): number {
    if (c.priv || this.matches(c, perms[0]!.id)) return R | W | OWNER;
    for (const e of perms.slice(1)) {
      if (!this.matches(c, e.id)) continue;
      if (!e.ignore) return e.bits;
      this.staleMatches++;
    }
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
    if (!tx) return this.seenRec(this.nodes.get(path) ?? null);
    let t = tx.touched.get(path);
    if (!t) {
      const rec = this.seenRec(this.nodes.get(path) ?? null);
      t = { orig: rec, cur: rec, modified: false, fire: undefined };
      tx.touched.set(path, t);
    }
    return this.seenRec(t.cur);
  }

  /**
   * Writes (or deletes, null) a node: C's write_node / delete_node. The
   * generation goes up first; then, when `quota` asks for it, the memory
   * quota is judged (a refusal undoes the request's writes, not the
   * generations, and poisons the transaction).
   */
  private write(c: MConn | undefined, tx: MTx | undefined, path: string, rec: NewRec, quota = false): void {
    const gen = ++this.generation;
    const stored = rec && { ...rec, perms: this.marked(rec.perms, gen), gen };
    if (stored && quota && c) this.judgeMemory(c, tx, path, stored);
    if (tx) {
      this.read(tx, path);
      const t = tx.touched.get(path)!;
      t.cur = stored;
      t.modified = true;
      return;
    }
    this.setGlobal(path, stored);
  }

  private judgeMemory(c: MConn, tx: MTx | undefined, path: string, rec: MNode): void {
    const old = tx ? tx.touched.get(path)?.cur ?? null : this.nodes.get(path) ?? null;
    const charged = tx ? c.domid : rec.perms[0]!.id;
    const key = tx ? this.copyKey(tx, path) : path.length;
    const refund = old && (tx || old.perms[0]!.id === charged) ? recordBytes(this.header, old, key) : 0;
    if (!this.overMemory(c, charged, recordBytes(this.header, rec, key) - refund)) return;
    this.undoRequest();
    if (tx) tx.failed = true;
    fail('EIO');
  }

  /** Would charging `add` more bytes to `charged`, on a request of `c`, reach the memory quota? */
  private overMemory(c: MConn, charged: number, add: number): boolean {
    if (this.memoryQuota === 0 || !this.domains.has(charged)) return false;
    if (this.master ? c.priv : charged === 0) return false;
    return this.memory(charged) + add >= this.memoryQuota;
  }

  private saveRequest(): void {
    const touched = new Map<MTx, Map<string, Touch>>();
    for (const c of this.conns) for (const tx of c.txs.values()) touched.set(tx, new Map([...tx.touched].map(([p, t]) => [p, { ...t }])));
    this.saved = { nodes: new Map(this.nodes), touched };
  }

  /** Undoes the request's writes; what it first read in a transaction stays copied there, as read. */
  private undoRequest(): void {
    const saved = this.saved!;
    this.nodes.clear();
    for (const [p, n] of saved.nodes) this.nodes.set(p, n);
    for (const [tx, before] of saved.touched) {
      for (const [p, t] of tx.touched) before.set(p, before.get(p) ?? { orig: t.orig, cur: t.orig, modified: false, fire: undefined });
      tx.touched = before;
    }
  }

  private setGlobal(path: string, rec: Rec): void {
    if (rec) this.nodes.set(path, rec);
    else this.nodes.delete(path);
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
    const node = rec ?? this.read(undefined, path);
    if (!node) return false;
    if (this.permFor(c, node.perms) & R) return true;
    const parent = this.read(undefined, parentOf(path));
    return parent !== null && (this.permFor(c, parent.perms) & R) !== 0;
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

  /**
   * @introduceDomain / @releaseDomain: the plain name to watchers of it
   * (master: only those without a depth), then in master `<name>/<domid>`
   * to its exact watchers and to watchers of the name with a depth of 1 or more.
   */
  private fireSpecial(name: string, domid: number): void {
    const perDomain = `${name}/${domid}`;
    const observers = this.conns.filter((c) => c.watches.length > 0 && this.mayObserveSpecial(c, name));
    for (const c of observers) {
      for (const w of c.watches) if (w.path === name && (!this.master || w.depth === undefined)) this.emit(c, `${name}\0${w.token}\0`);
    }
    if (!this.master) return;
    for (const c of observers) {
      for (const w of c.watches) {
        if (w.path === perDomain || ((w.depth ?? 0) > 0 && this.watchMatches(w, perDomain, 'subtree'))) this.emit(c, `${perDomain}\0${w.token}\0`);
      }
    }
  }

  /** Master: the special node's permissions and "/" as for any node; 4.17: the side list. */
  private mayObserveSpecial(c: MConn, name: string): boolean {
    if (this.master) return this.mayObserve(c, name, null, null);
    return (this.permFor(c, this.specialPerms.get(name)!) & R) !== 0;
  }

  /** Would output of `length` payload bytes for `c` break its memory quota? */
  private outputRefused(c: MConn, length: number): boolean {
    return length > FIXED_REPLY && this.eventRefused(c, length);
  }

  /** Would an event of `length` payload bytes for `c` break its memory quota? (No size is exempt.) */
  private eventRefused(c: MConn, length: number): boolean {
    return this.overMemory(c, c.domid, length + HEADER);
  }

  /** Charges output of `length` payload bytes queued for `c`, a guest's ring (dom0's sockets are not charged). */
  private charge(c: MConn, length: number): void {
    if (c.domid === 0) return;
    if (this.batched) this.batched.push([c, length]);
    else this.pending.set(c, (this.pending.get(c) ?? 0) + HEADER + length);
  }

  /** Queues an event; dropped over the memory quota; identical non-special events already queued in this request are dropped. */
  private emit(c: MConn, payload: string): void {
    if (this.eventRefused(c, payload.length)) return;
    const seen = this.seen.get(c.name) ?? new Set<string>();
    this.seen.set(c.name, seen);
    if (!payload.startsWith('@') && seen.has(payload)) return;
    seen.add(payload);
    this.charge(c, payload.length);
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

  /** A node's owner's node count changed: noted in the transaction, or the owner gets an object. */
  private ownerCounted(tx: MTx | undefined, owner: number): void {
    if (tx) tx.owners.add(owner);
    else this.existingDomainObject(owner);
  }

  /**
   * Creates `path` and its missing ancestors below the nearest existing one
   * (§6.6); as C, the deepest first, the existing ancestor last.
   */
  private create(c: MConn, tx: MTx | undefined, path: string, value: string): void {
    const missing = [path];
    let anc = parentOf(path);
    let ancRec = this.read(tx, anc);
    while (!ancRec) {
      missing.unshift(anc);
      anc = parentOf(anc);
      ancRec = this.read(tx, anc);
    }
    const perms = c.priv ? ancRec.perms : [{ ...ancRec.perms[0]!, id: c.domid }, ...ancRec.perms.slice(1)];
    for (let i = missing.length - 1; i >= 0; i--) {
      const next = missing[i + 1];
      this.write(c, tx, missing[i]!, { value: next ? '' : value, perms, children: next ? [baseOf(next)] : [] }, true);
      this.ownerCounted(tx, perms[0]!.id);
    }
    this.write(c, tx, anc, { ...ancRec, children: [...ancRec.children, baseOf(missing[0]!)] }, true);
  }

  private opWrite(c: MConn, tx: MTx | undefined, payload: string): string {
    const nul = payload.indexOf('\0');
    if (nul < 0) fail('EINVAL');
    const path = this.canon(c, payload.slice(0, nul), false);
    const value = payload.slice(nul + 1);
    const rec = this.lookupOrMissing(c, tx, path, W);
    if (rec) this.write(c, tx, path, { ...rec, value }, true);
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
    this.removeTree(c, tx, path);
    return 'OK';
  }

  /** C's rm_node: `path` and everything below it, then its entry in its parent. */
  private removeTree(c: MConn | undefined, tx: MTx | undefined, path: string): void {
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
        this.write(c, tx, p, node);
        node = this.read(tx, p)!;
      }
      this.write(c, tx, p, null);
      tx?.owners.add(node.perms[0]!.id);
      this.fire(tx, p, p === path ? 'subtree' : 'exact', node, null);
    };
    remove(path);
    // In a transaction the parent's copy may predate the node (created by someone
    // else after the transaction read the parent): C's delete_child() finds no
    // entry, reports corruption and fails with EIO after the subtree is gone.
    if (!parent.children.includes(baseOf(path))) fail('EIO');
    this.write(c, tx, parentOf(path), { ...parent, children: parent.children.filter((n) => n !== baseOf(path)) });
  }

  private opSetPerms(c: MConn, tx: MTx | undefined, payload: string): string {
    const count = nuls(payload) - 1;
    if (count < 1) fail('EINVAL');
    if (!c.priv && (this.master ? count >= 5 : count > 5)) fail('ENOSPC');
    const args = strings(payload);
    const parsed = args.slice(1, 1 + count).map((s) => {
      const bits = 'nrwb'.indexOf(s.charAt(0));
      const id = parseDomid(s.slice(1));
      if (s.length === 0 || bits < 0 || id === undefined) return fail('EINVAL');
      return { bits, id };
    });
    // C's domain_alloc_permrefs, once all parsed: an object for every domain the hypervisor has, the others ignored.
    const perms: Perm[] = parsed.map(({ bits, id }) => {
      if (this.master && id === DOMID_ANY) return { bits, id, ignore: false };
      if (this.hypervisorHas(id)) this.domainObject(id);
      return { bits, id, ignore: !this.domains.has(id) };
    });
    if (perms[0]!.ignore) fail('ENOENT'); // the owner's domain must exist
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
    this.write(c, tx, path, { ...rec, perms }, true);
    if (tx) tx.owners.add(rec.perms[0]!.id).add(perms[0]!.id);
    this.fire(tx, path, 'subtree', this.read(tx, path), rec.perms);
    return 'OK';
  }

  private opRead(c: MConn, tx: MTx | undefined, payload: string): string {
    return `=${this.lookup(c, tx, this.canon(c, oneArg(payload), false), R).value}`;
  }

  private opDirectory(c: MConn, tx: MTx | undefined, payload: string): string {
    const node = this.lookup(c, tx, this.canon(c, oneArg(payload), false), R);
    return `=${node.children.map((n) => `${n}\0`).join('')}`;
  }

  private opDirectoryPart(c: MConn, tx: MTx | undefined, payload: string): string {
    if (nuls(payload) !== 2) fail('EINVAL');
    const [rawPath, rawOffset] = strings(payload);
    const node = this.lookup(c, tx, this.canon(c, rawPath, false), R);
    const list = node.children.map((n) => `${n}\0`).join('');
    const offset = atoi(rawOffset!) >>> 0;
    if (offset >= list.length) return `=${node.gen}\0\0`;
    // (small lists only: always fits, so the rest of the list plus the end marker)
    return `=${node.gen}\0${list.slice(offset)}\0`;
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
    if (this.overMemory(c, c.domid, path.length + token.length)) fail('ENOMEM');
    const w: MWatch = { path, token, strip: relative ? `${c.home}/` : '', depth };
    c.watches.push(w);
    return { text: 'OK', initial: `${path.slice(w.strip.length)}\0${token}\0` };
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
    c.txs.set(id, { id, gen: ++this.generation, touched: new Map(), owners: new Set(), failed: false });
    return `=${id}\0`;
  }

  private opTxEnd(c: MConn, tx: MTx | undefined, payload: string): string {
    const arg = oneArg(payload);
    if (arg !== 'T' && arg !== 'F') fail('EINVAL');
    if (!tx) return fail('ENOENT');
    try {
      if (arg === 'T') this.commitCharged(tx);
    } finally {
      c.txs.delete(tx.id);
    }
    return 'OK';
  }

  /**
   * The simulator judges a commit's events against the output queued before
   * the commit, and queues them together (a known limit: C charges each as
   * it is queued).
   */
  private commitCharged(tx: MTx): void {
    this.batched = [];
    try {
      this.commit(tx);
    } finally {
      const queued = this.batched;
      this.batched = undefined;
      for (const [c, length] of queued) this.charge(c, length);
    }
  }

  /**
   * C's do_transaction_end and finalize_transaction: the copies of nodes
   * only read go first; then node by node in first-touch order, the copy
   * goes, the node is written (a fresh generation, the copy's marks as
   * they are) or deleted, and its event fires, judged with the nodes after
   * it, and their copies, still as they were.
   */
  private commit(tx: MTx): void {
    if (tx.failed) fail('ENOMEM');
    // C's transaction_fix_domains, before the conflict check.
    for (const owner of tx.owners) this.existingDomainObject(owner);
    for (const [path, t] of tx.touched) {
      if ((t.orig?.gen ?? -1) !== (this.nodes.get(path)?.gen ?? -1)) fail('EAGAIN');
    }
    const modified = [...tx.touched].filter(([, t]) => t.modified);
    tx.touched = new Map(modified);
    for (const [path, t] of modified) {
      tx.touched.delete(path);
      this.setGlobal(path, t.cur && { ...t.cur, gen: ++this.generation });
      if (t.fire) this.deliver(path, t.fire, null, t.orig ? t.orig.perms : null);
    }
  }

  // --- domains ---

  /** The domid argument: atoi in 4.17, strict decimal up to 65535 in master. */
  private domidArg(text: string | undefined): number {
    if (text === undefined) return fail('EINVAL');
    if (!this.master) return atoi(text) >>> 0;
    const m = /^[ \t\n\v\f\r]*(\d+)$/.exec(text);
    if (!m || Number(m[1]) > 65535) return fail('EINVAL');
    return Number(m[1]);
  }

  /** INTRODUCE domid gfn port: a new domain gets its connection and fires @introduceDomain; an introduced one is reset. */
  private opIntroduce(payload: string): string {
    const args = strings(payload);
    if (args.length < 3) fail('EINVAL');
    const domid = this.domidArg(args[0]);
    if ((atoi(args[2]!) >>> 0) === 0 || !this.hypervisorHas(domid)) fail('EINVAL');
    const domain = this.domainObject(domid);
    const name = `dom${domid}`;
    if (!domain.introduced || !this.hasConn(name)) {
      domain.introduced = true;
      this.openConn(name, domid, domid === 0);
      if (domid !== 0) this.fireSpecial('@introduceDomain', domid);
    }
    const c = this.conn(name);
    c.watches.length = 0;
    c.txs.clear();
    return 'OK';
  }

  /** RELEASE domid: the connection goes, then the domain (see the header). */
  private opRelease(payload: string): string {
    const domid = this.domidArg(oneArg(payload));
    if (domid === 0) fail('EINVAL');
    const domain = this.domains.get(domid);
    if (!domain?.introduced) fail('ENOENT');
    this.conns.splice(this.conns.findIndex((c) => c.domid === domid && !c.priv), 1);
    this.removeOwnedBy(domid);
    this.forgetEntries(domid);
    this.domains.delete(domid);
    this.fireSpecial('@releaseDomain', domid);
    return 'OK';
  }

  /** C's domain_tree_remove: each node `domid` owns goes with its subtree (the root cannot, and keeps its). */
  private removeOwnedBy(domid: number): void {
    const visit = (path: string): void => {
      const node = this.nodes.get(path);
      if (!node) return;
      if (node.perms[0]!.id === domid) {
        if (path !== '/') this.removeTree(undefined, undefined, path);
        return;
      }
      for (const name of node.children) visit(join(path, name));
    };
    visit('/');
  }

  /** Permission entries naming a released domain: removed from the special lists; in master from every node too. */
  private forgetEntries(domid: number): void {
    const without = (perms: readonly Perm[]): readonly Perm[] => [
      perms[0]!.id === domid ? { ...perms[0]!, id: 0 } : perms[0]!,
      ...perms.slice(1).filter((e) => e.id !== domid),
    ];
    for (const [name, perms] of this.specialPerms) this.specialPerms.set(name, without(perms));
    if (!this.master) return;
    for (const [path, node] of this.nodes) {
      if (path.startsWith('@') || node.perms.slice(1).some((e) => e.id === domid)) this.nodes.set(path, { ...node, perms: without(node.perms) });
    }
  }

  // --- the request pipeline (§1.5) ---

  request(connName: string, type: number, payloadText: string, txId: number): ModelReply {
    const c = this.conn(connName);
    const payload = payloadText.replace(/\|/g, '\0');
    this.out = new Map();
    this.seen = new Map();
    this.pending = new Map();
    this.saveRequest();
    let text: string;
    let initial: string | undefined;
    try {
      if (!HANDLED.has(type)) fail('ENOSYS');
      if (PRIVILEGED.has(type) && !c.priv) fail('EACCES');
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
        case T.INTRODUCE: text = this.opIntroduce(payload); break;
        case T.RELEASE: text = this.opRelease(payload); break;
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
    } finally {
      this.saved = undefined;
    }
    if (text.startsWith('=') && this.outputRefused(c, text.length - 1)) {
      text = 'ENOMEM';
      initial = undefined;
    }
    this.charge(c, text === 'OK' ? 3 : text.startsWith('=') ? text.length - 1 : text.length + 1);
    // The initial event goes after the reply, never permission-filtered, only judged by the memory quota.
    const after = initial === undefined || this.eventRefused(c, initial.length) ? [] : [initial.replace(/\0/g, '|')];
    // Written out once the request is done.
    this.pending = new Map();
    const rendered = text === 'OK' || !text.startsWith('=') ? text : text.replace(/\0/g, '|');
    return { text: rendered, events: this.out, after };
  }
}
