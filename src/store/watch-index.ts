/**
 * Every registered watch filed under its path, so that a node event looks
 * only at the watches on its own path and on its ancestors, never at the
 * thousands elsewhere. The candidates come back in C xenstored's firing
 * order: by connection, oldest first (a client's serial), then in the order
 * each connection registered them.
 */
import type { Requester } from './requester.js';
import { watchMatches, type MatchMode, type Watch } from './watches.js';

export interface IndexedWatch {
  readonly client: Requester;
  readonly watch: Watch;
  /** Registration order across all clients. */
  readonly seq: number;
}

/** One client's watches an event fires, in its registration order. Never modified: a queued fan-out may hold it. */
export interface FiringGroup {
  readonly client: Requester;
  readonly watches: readonly Watch[];
}

const byFiringOrder = (a: IndexedWatch, b: IndexedWatch) => a.client.serial - b.client.serial || a.seq - b.seq;

export class WatchIndex {
  private readonly byPath = new Map<string, IndexedWatch[]>();
  /**
   * Each path's watches grouped by client, in firing order, built when an
   * event first finds them and forgotten when the path's watches change:
   * the many events of a commit under one watched directory share them.
   */
  private readonly groupsByPath = new Map<string, { groups: FiringGroup[]; depthless: boolean }>();
  private seq = 0;

  add(client: Requester, watch: Watch): void {
    const entry = { client, watch, seq: this.seq++ };
    this.groupsByPath.delete(watch.path);
    const bucket = this.byPath.get(watch.path);
    if (bucket) bucket.push(entry);
    else this.byPath.set(watch.path, [entry]);
  }

  remove(watch: Watch): void {
    const bucket = this.byPath.get(watch.path);
    const i = bucket?.findIndex((e) => e.watch === watch) ?? -1;
    if (i < 0) return;
    this.groupsByPath.delete(watch.path);
    if (bucket!.length === 1) this.byPath.delete(watch.path);
    else bucket!.splice(i, 1);
  }

  /**
   * The watches an event on `path` fires, by client in firing order. When
   * only one path (the event's, or one ancestor's) has watches and none of
   * them has a depth, they all match, and its cached groups are the answer.
   */
  firing(path: string, mode: MatchMode): readonly FiringGroup[] {
    const keys = this.watchedKeys(path, mode);
    if (keys.length === 1) {
      // Without a depth, every watch on the one path matches (exact events look at their own path only).
      const { groups, depthless } = this.groupsOf(keys[0]!);
      if (mode === 'exact' || depthless) return groups;
    }
    return groupByClient(this.candidates(keys).filter((e) => watchMatches(e.watch, path, mode)));
  }

  /**
   * The watched paths an event on `path` looks at: the path, and for
   * subtree events each ancestor at a "/" boundary and the first character
   * alone ("/" or "@" is the parent of everything that starts with it, as
   * in C).
   */
  private watchedKeys(path: string, mode: MatchMode): string[] {
    const keys: string[] = [];
    const take = (key: string) => {
      if (this.byPath.has(key)) keys.push(key);
    };
    take(path);
    if (mode === 'subtree' && path.length > 1) {
      for (let i = path.length - 1; i > 0; i--) if (path.charCodeAt(i) === 0x2f) take(path.slice(0, i));
      take(path[0]!);
    }
    return keys;
  }

  /** The watches on `key` by client in firing order, and whether none has a depth. */
  private groupsOf(key: string): { groups: FiringGroup[]; depthless: boolean } {
    const cached = this.groupsByPath.get(key);
    if (cached) return cached;
    const bucket = this.byPath.get(key)!;
    const fresh = { groups: groupByClient(bucket), depthless: bucket.every((e) => e.watch.depth === undefined) };
    this.groupsByPath.set(key, fresh);
    return fresh;
  }

  /** The watches on `keys` (groupByClient puts them in firing order). */
  private candidates(keys: string[]): IndexedWatch[] {
    const found: IndexedWatch[] = [];
    for (const key of keys) for (const e of this.byPath.get(key)!) found.push(e);
    return found;
  }
}

/** Entries in firing order, as one group per client. */
function groupByClient(entries: readonly IndexedWatch[]): FiringGroup[] {
  const groups: { client: Requester; watches: Watch[] }[] = [];
  for (const { client, watch } of [...entries].sort(byFiringOrder)) {
    const last = groups.at(-1);
    if (last?.client === client) last.watches.push(watch);
    else groups.push({ client, watches: [watch] });
  }
  return groups;
}
