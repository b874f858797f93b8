/**
 * Watch registrations and the rules deciding which watch an event path
 * matches (subtree or exact, per-component prefixes, optional depth).
 */
import { canonicalize, isSpecialPath } from './path.js';

export interface Watch {
  /** Canonical (absolute or @special) path. */
  readonly path: string;
  readonly token: string;
  /** Home prefix stripped from event paths of a relative watch. */
  readonly relativeTo: string | undefined;
  /** Levels below `path` that still match; undefined = unlimited. */
  readonly depth: number | undefined;
}

export type MatchMode = 'subtree' | 'exact';

/** What C charges for a watch: its path and its token. */
export function watchBytes(watch: { path: string; token: string }): number {
  return watch.path.length + watch.token.length;
}

/**
 * Deepest depth a watch may have: the migration stream stores a depth in 16
 * bits, 65535 meaning no limit. C master takes any non-negative int here
 * and silently cuts it to 16 bits when it dumps; the simulator refuses a
 * depth it could not save with the error C gives for a negative one.
 */
export const WATCH_DEPTH_MAX = 0xfffe;

export function watchMatches(watch: Watch, eventPath: string, mode: MatchMode): boolean {
  return mode === 'exact' ? watch.path === eventPath : isChild(eventPath, watch.path, watch.depth);
}

/**
 * Is `child` at or below `parent`, at most `depth` levels down? As C
 * xenstored decides it: a one-character parent ("/", but also "@") is the
 * parent of everything starting with it; a longer one only of paths that
 * continue with "/".
 */
export function isChild(child: string, parent: string, depth: number | undefined): boolean {
  let at = parent.length;
  if (!child.startsWith(parent)) return false;
  if (at > 1 && at < child.length && child.charCodeAt(at) !== 0x2f) return false;
  if (depth === undefined || at === child.length) return true;
  for (let levels = at === 1 ? 1 : 0; levels <= depth; at++) {
    if (at === child.length) return true;
    if (child.charCodeAt(at) === 0x2f) levels++;
  }
  return false;
}

/** The path as the watcher sees it: relative watches get relative paths. */
export function eventPathFor(watch: Watch, eventPath: string): string {
  if (watch.relativeTo === undefined) return eventPath;
  const rest = eventPath.slice(watch.relativeTo.length);
  return rest.charCodeAt(0) === 0x2f ? rest.slice(1) : rest;
}

/** `eventPathFor(watch, eventPath).length`, without building the string. */
export function eventPathLength(watch: Watch, eventPath: string): number {
  if (watch.relativeTo === undefined) return eventPath.length;
  const rest = eventPath.length - watch.relativeTo.length;
  return eventPath.charCodeAt(watch.relativeTo.length) === 0x2f ? rest - 1 : rest;
}

/** The watch path as the client gave it (what the migration stream stores). */
export function givenPath(watch: Watch): string {
  return eventPathFor(watch, watch.path);
}

/** A watch as saved: the path as the client gave it (relative or not), as the migration stream keeps it. */
export interface SavedWatch {
  path: string;
  token: string;
  depth: number | undefined;
}

export function saveWatch(watch: Watch): SavedWatch {
  return { path: givenPath(watch), token: watch.token, depth: watch.depth };
}

/** The watch of a client whose relative paths start at `home`. */
export function loadWatch(saved: SavedWatch, home: string): Watch {
  const relative = saved.path.charCodeAt(0) !== 0x2f && !isSpecialPath(saved.path);
  return { path: canonicalize(saved.path, home), token: saved.token, relativeTo: relative ? home : undefined, depth: saved.depth };
}
