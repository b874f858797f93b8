/**
 * Every registered watch filed under its path, so that a node event looks
 * only at the watches on its own path and on its ancestors, never at the
 * thousands elsewhere. The candidates come back in C xenstored's firing
 * order: by connection, oldest first (a client's serial), then in the order
 * each connection registered them.
 */
import type { Requester } from './requester.js';
import type { MatchMode, Watch } from './watches.js';

export interface IndexedWatch {
  readonly client: Requester;
  readonly watch: Watch;
  /** Registration order across all clients. */
  readonly seq: number;
}

const byFiringOrder = (a: IndexedWatch, b: IndexedWatch) => a.client.serial - b.client.serial || a.seq - b.seq;

export class WatchIndex {
  private readonly byPath = new Map<string, IndexedWatch[]>();
  private seq = 0;

  add(client: Requester, watch: Watch): void {
    const entry = { client, watch, seq: this.seq++ };
    const bucket = this.byPath.get(watch.path);
    if (bucket) bucket.push(entry);
    else this.byPath.set(watch.path, [entry]);
  }

  remove(watch: Watch): void {
    const bucket = this.byPath.get(watch.path);
    const i = bucket?.findIndex((e) => e.watch === watch) ?? -1;
    if (i < 0) return;
    if (bucket!.length === 1) this.byPath.delete(watch.path);
    else bucket!.splice(i, 1);
  }

  /**
   * The watches that may match an event on `path` (their depth is still to
   * be checked), in firing order. Subtree events look at the path, each
   * ancestor at a "/" boundary, and the first character alone ("/" or "@"
   * is the parent of everything that starts with it, as in C).
   */
  candidates(path: string, mode: MatchMode): IndexedWatch[] {
    const found: IndexedWatch[] = [];
    const take = (key: string) => {
      const bucket = this.byPath.get(key);
      if (bucket) for (const e of bucket) found.push(e);
    };
    take(path);
    if (mode === 'subtree' && path.length > 1) {
      for (let i = path.length - 1; i > 0; i--) if (path.charCodeAt(i) === 0x2f) take(path.slice(0, i));
      take(path[0]!);
    }
    return found.length > 1 ? found.sort(byFiringOrder) : found;
  }
}
