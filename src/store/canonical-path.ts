/**
 * Turns a client's path argument into the canonical path an operation
 * works on, with each Xen version's validation rules (EINVAL otherwise).
 */
import { fail } from './errors.js';
import type { Requester } from './requester.js';
import { canonicalize, hasValidChars, isSpecialPath, isWellFormedNodePath, localDomainPrefixLength } from './path.js';
import { quotaFor } from './quota-gate.js';
import type { Store } from './store.js';

/** Where a special "@…" path is acceptable. */
export type SpecialPaths = 'never' | 'allowed';

function tooLong(store: Store, client: Requester, path: string): boolean {
  const { compat } = store;
  if (!compat.pathLimitForPrivileged && !client.quotaBound) return false;
  const max = quotaFor(store, client, 'path-max');
  if (max === 0) return false;
  const rest = path.length - localDomainPrefixLength(path);
  return compat.pathLimitInclusive ? rest >= max : rest > max;
}

/** Canonical path of a node argument; EINVAL when the version rejects it. */
export function nodePath(store: Store, client: Requester, raw: string | undefined, special: SpecialPaths = 'never'): string {
  if (raw === undefined) fail('EINVAL', 'missing path');
  if (store.compat.specialPathsAreNodes) {
    // Master validates characters before making the path absolute.
    if (!hasValidChars(raw) || (isSpecialPath(raw) && special === 'never')) fail('EINVAL', 'invalid path');
    const path = canonicalize(raw, client.home);
    if ((path.length > 1 && path.endsWith('/')) || path.includes('//') || tooLong(store, client, path)) {
      fail('EINVAL', 'invalid path');
    }
    return path;
  }
  const path = canonicalize(raw, client.home);
  if (!isWellFormedNodePath(path) || tooLong(store, client, path)) fail('EINVAL', 'invalid path');
  return path;
}

/** Canonical path of a WATCH argument and whether the client gave it relative. */
export function watchPath(store: Store, client: Requester, raw: string): { path: string; relative: boolean } {
  if (!store.compat.specialPathsAreNodes && isSpecialPath(raw)) {
    // 4.17 takes any "@…" string up to the relative path limit.
    if (raw.length > 2048) fail('EINVAL', 'watch path too long');
    return { path: raw, relative: false };
  }
  const relative = raw.charCodeAt(0) !== 0x2f && !isSpecialPath(raw);
  return { path: nodePath(store, client, raw, 'allowed'), relative };
}

/** Canonical path of an UNWATCH argument (4.17 does not validate it). */
export function unwatchPath(store: Store, client: Requester, raw: string): string {
  return store.compat.unwatchValidatesPath ? nodePath(store, client, raw, 'allowed') : canonicalize(raw, client.home);
}
