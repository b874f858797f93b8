/**
 * Watch registrations and the rules deciding which watch an event path
 * matches (subtree or exact, per-component prefixes, optional depth).
 */
import { depthBelow } from './path.js';

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

export function watchMatches(watch: Watch, eventPath: string, mode: MatchMode): boolean {
  if (mode === 'exact') return watch.path === eventPath;
  const depth = depthBelow(eventPath, watch.path);
  return depth >= 0 && (watch.depth === undefined || depth <= watch.depth);
}

/** The path as the watcher sees it: relative watches get relative paths. */
export function eventPathFor(watch: Watch, eventPath: string): string {
  if (watch.relativeTo === undefined) return eventPath;
  const rest = eventPath.slice(watch.relativeTo.length);
  return rest.charCodeAt(0) === 0x2f ? rest.slice(1) : rest;
}

/** The watch path as the client gave it (what the migration stream stores). */
export function givenPath(watch: Watch): string {
  return eventPathFor(watch, watch.path);
}
