/**
 * Node permissions: a non-empty list whose first entry is the owner and the
 * default for everybody else. Lists are immutable and interned per store
 * (`PermsTable`), so the many nodes that share one list share one object.
 */
import { StoreError } from './errors.js';

export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_BOTH = PERM_READ | PERM_WRITE;
/** Only ever computed, never stored: full rights of owners and privileged callers. */
export const PERM_OWNER = 8;

export interface PermEntry {
  readonly bits: number;
  /** 32-bit unsigned domain id, as the C daemon stores it. */
  readonly domid: number;
  /** Entry names a domain that is gone or newer than the grant: it matches nobody. */
  readonly stale: boolean;
}
export type Perms = readonly PermEntry[];

const PERM_CHARS = ['n', 'r', 'w', 'b'] as const;
export type PermChar = (typeof PERM_CHARS)[number];

function keyOf(entries: readonly PermEntry[]): string {
  let key = '';
  for (const e of entries) key += `${e.bits}:${e.domid}${e.stale ? '!' : ''},`;
  return key;
}

/**
 * One store's interned permission lists. A list is held weakly: once no
 * node, transaction or reader holds it any more, the garbage collector
 * takes it and its entry here goes too, so the table never outgrows what
 * the store holds (a guest cycling SET_PERMS through ever-new lists
 * leaves nothing behind).
 */
export class PermsTable {
  private readonly lists = new Map<string, WeakRef<Perms>>();
  private readonly forget = new FinalizationRegistry<string>((key) => {
    if (this.lists.get(key)?.deref() === undefined) this.lists.delete(key);
  });

  /** The shared immutable list equal to `entries`. */
  intern(entries: readonly PermEntry[]): Perms {
    const key = keyOf(entries);
    const known = this.lists.get(key)?.deref();
    if (known) return known;
    const perms: Perms = Object.freeze(entries.map((e) => Object.freeze({ bits: e.bits, domid: e.domid >>> 0, stale: e.stale })));
    this.lists.set(key, new WeakRef(perms));
    this.forget.register(perms, key);
    return perms;
  }

  /** A node's default: owned by `owner`, nobody else may read or write. */
  owned(owner: number): Perms {
    return this.intern([{ bits: PERM_NONE, domid: owner, stale: false }]);
  }

  /** Lists interned and not yet collected (for tests and memory reports). */
  get size(): number {
    return this.lists.size;
  }
}

export function permChar(bits: number): PermChar {
  return PERM_CHARS[bits & PERM_BOTH]!;
}

export function permBits(char: string): number | undefined {
  const i = (PERM_CHARS as readonly string[]).indexOf(char);
  return i < 0 ? undefined : i;
}

/** Wire form of one entry: the letter, then the domid printed as a signed 32-bit int. */
export function formatPermEntry(entry: PermEntry): string {
  return `${permChar(entry.bits)}${entry.domid | 0}`;
}

export function formatPerms(perms: Perms): string[] {
  return perms.map(formatPermEntry);
}

/**
 * strtol(s, &end, 0) followed by the C daemon's `*end || !*s` check, then
 * truncation to 32 bits. Accepts leading blanks, a sign, hex "0x" and octal
 * "0" forms; saturates like strtol on overflow.
 */
export function parsePermDomid(text: string): number | undefined {
  if (text.length === 0) return undefined;
  let i = 0;
  while (i < text.length && ' \t\n\v\f\r'.includes(text[i]!)) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') negative = text[i++] === '-';
  let base = 10;
  if (text[i] === '0') {
    if ((text[i + 1] === 'x' || text[i + 1] === 'X') && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  const digitsStart = i;
  let value = 0n;
  for (; i < text.length; i++) {
    const d = parseInt(text[i]!, base);
    if (Number.isNaN(d)) break;
    value = value * BigInt(base) + BigInt(d);
  }
  if (i === digitsStart || i !== text.length) return undefined;
  const LONG_MAX = (1n << 63n) - 1n;
  if (negative) value = value > LONG_MAX + 1n ? -(LONG_MAX + 1n) : -value;
  else if (value > LONG_MAX) value = LONG_MAX;
  return Number(BigInt.asUintN(32, value));
}

/** Parses the wire strings of SET_PERMS; EINVAL for any malformed entry. */
export function parsePerms(strings: readonly string[]): PermEntry[] {
  return strings.map((s) => {
    const bits = permBits(s.charAt(0));
    const domid = parsePermDomid(s.slice(1));
    if (bits === undefined || domid === undefined) throw new StoreError('EINVAL', `bad permission "${s}"`);
    return { bits, domid, stale: false };
  });
}

/** Who is asking, as far as permissions are concerned. */
export interface PermIdentity {
  readonly privileged: boolean;
  readonly domid: number;
  /** Domain set with SET_TARGET: matched as if it were our own id. */
  readonly target: number | undefined;
  /** Master: entries for DOMID_ANY match every domain. */
  readonly anyDomid: number | undefined;
}

/** Effective rights of `who` on a node with `perms` (first matching entry wins). */
export function permFor(who: PermIdentity, perms: Perms): number {
  const owner = perms[0]!;
  const matches = (id: number) => id === who.domid || id === who.target || id === who.anyDomid;
  if (who.privileged || matches(owner.domid)) return PERM_BOTH | PERM_OWNER;
  for (let i = 1; i < perms.length; i++) {
    const e = perms[i]!;
    if (!e.stale && matches(e.domid)) return e.bits;
  }
  return owner.bits;
}
