/** WATCH, UNWATCH, RESET_WATCHES. */
import { emit } from '../../store/events.js';
import { eventPathFor } from '../../store/watches.js';
import { addWatch, removeWatch } from '../../store/watch-ops.js';
import type { HandlerRequest } from '../handler.js';
import { strings } from '../payload.js';
import { OK, type Reply } from '../reply.js';

export function watch(r: HandlerRequest): Reply {
  const added = addWatch(r.store, r.client, strings(r.payload));
  // The initial event goes out after the OK and is never permission-filtered.
  return { ...OK, after: () => emit(r.store, r.client, eventPathFor(added, added.path), added.token) };
}

export function unwatch(r: HandlerRequest): Reply {
  removeWatch(r.store, r.client, strings(r.payload));
  return OK;
}

export function resetWatches(r: HandlerRequest): Reply {
  r.store.dropWatchesAndTransactions(r.client);
  return OK;
}
