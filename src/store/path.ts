/**
 * XenStore path rules: which strings name a node, how relative paths become
 * absolute, and the length limit that exempts a /local/domain/<N>/ prefix.
 */

const VALID_CHAR = /^[A-Za-z0-9\-/_@]*$/;
const LOCAL_DOMAIN = '/local/domain/';

export function isSpecialPath(path: string): boolean {
  return path.charCodeAt(0) === 0x40; // '@'
}

export function hasValidChars(path: string): boolean {
  return VALID_CHAR.test(path);
}

/** Resolves a client-supplied path against the connection's home. */
export function canonicalize(path: string, home: string): string {
  const first = path.charCodeAt(0);
  if (first === 0x2f /* / */ || first === 0x40 /* @ */) return path;
  return `${home}/${path}`;
}

/**
 * Length of a leading "/local/domain/<N>/" prefix (N: up to five characters
 * read as by scanf's %5u, so an optional '-' counts), or 0 without one. The
 * path limit applies to what follows it.
 */
export function localDomainPrefixLength(path: string): number {
  if (!path.startsWith(LOCAL_DOMAIN)) return 0;
  let i = LOCAL_DOMAIN.length;
  const start = i;
  if (path[i] === '-') i++;
  const digitsStart = i;
  while (i < path.length && i - start < 5 && path.charCodeAt(i) >= 0x30 && path.charCodeAt(i) <= 0x39) i++;
  if (i === digitsStart || path[i] !== '/') return 0;
  return i + 1;
}

/** Shape checks every absolute node path must pass (length is checked apart). */
export function isWellFormedNodePath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f) return false;
  if (path.length > 1 && path.endsWith('/')) return false;
  if (path.includes('//')) return false;
  return hasValidChars(path);
}

export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** How many components an absolute path has ("/" has none), without splitting it. */
export function depth(path: string): number {
  if (path === '/') return 0;
  let n = 0;
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) n++;
  return n;
}
