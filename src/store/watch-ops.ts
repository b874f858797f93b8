/** WATCH, UNWATCH and RESET_WATCHES on a client's watch list. */
import { Feature } from '../wire/vocabulary.js';
import { unwatchPath, watchPath } from './canonical-path.js';
import { requesterFeatures, type Requester } from './requester.js';
import { fail } from './errors.js';
import { atoi } from './numbers.js';
import { enforce, enforceMemory } from './quota-gate.js';
import type { Store } from './store.js';
import { WATCH_DEPTH_MAX, watchBytes, type Watch } from './watches.js';

/** Registers a watch; returns it so the caller can send the initial event. */
export function addWatch(store: Store, client: Requester, args: string[]): Watch {
  let depth: number | undefined;
  if (args.length === 3 && store.compat.watchDepth && requesterFeatures(client) & Feature.WATCH_DEPTH) {
    depth = atoi(args[2]!);
    if (depth < 0) fail('EINVAL', 'negative watch depth');
    if (depth > WATCH_DEPTH_MAX) fail('EINVAL', `watch depth over ${WATCH_DEPTH_MAX}`);
  } else if (args.length !== 2) {
    fail('EINVAL', 'WATCH takes a path and a token');
  }
  const { path, relative } = watchPath(store, client, args[0]!);
  const token = args[1]!;
  if (client.watches.some((w) => w.path === path && w.token === token)) fail('EEXIST', 'watch already registered');
  enforce(store, client, 'watches', client.watches.length);
  enforceMemory(store, client, 'watch-memory', client.domid, watchBytes({ path, token }));
  const watch: Watch = { path, token, relativeTo: relative ? client.home : undefined, depth };
  store.watch(client, watch);
  return watch;
}

export function removeWatch(store: Store, client: Requester, args: string[]): void {
  if (args.length !== 2) fail('EINVAL', 'UNWATCH takes a path and a token');
  const path = unwatchPath(store, client, args[0]!);
  const i = client.watches.findIndex((w) => w.path === path && w.token === args[1]);
  if (i < 0) fail('ENOENT', 'no such watch');
  store.unwatch(client, i);
}
