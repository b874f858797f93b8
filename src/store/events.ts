/**
 * Watch firing: which clients may see a change (permission filtering) and
 * which of their watches match. Inside a transaction events are only noted;
 * they fire at commit.
 */
import type { Requester } from './requester.js';
import type { OpContext } from './context.js';
import type { NodeContents } from './node.js';
import { parentPath } from './path.js';
import { permFor, PERM_READ, type Perms } from './permissions.js';
import { eventFits, outputRoom } from './quota-gate.js';
import type { Store } from './store.js';
import { eventPathFor, watchMatches, type MatchMode, type Watch } from './watches.js';

/**
 * The state a change is judged against: the node (null to look it up, as
 * when it is gone), its permissions before the change, and its parent
 * (undefined to look it up).
 */
export interface ChangeContext {
  record: NodeContents | null;
  oldPerms: Perms | null;
  parent?: NodeContents | null;
}

/** May `client` learn that `path` changed? (C's watch_permitted) */
function mayObserve(store: Store, client: Requester, path: string, change: ChangeContext): boolean {
  if (change.oldPerms && permFor(client, change.oldPerms) & PERM_READ) return true;
  const node = change.record ?? liveRecord(store, path);
  if (!node) return false;
  if (permFor(client, node.perms) & PERM_READ) return true;
  const parent = change.parent === undefined ? liveRecord(store, parentPath(path)) : change.parent;
  return parent !== null && (permFor(client, parent.perms) & PERM_READ) !== 0;
}

function liveRecord(store: Store, path: string): NodeContents | null {
  const node = store.lookup(path);
  return node ? store.withCurrentPerms(node) : null;
}

/**
 * Calls `found` for every watch an event on a changed node fires, in C's
 * order, skipping clients not allowed to see it. Only the watches on the
 * path and its ancestors are looked at; the permission check runs once per
 * client, as C's does.
 */
function forEachFiring(store: Store, path: string, mode: MatchMode, change: ChangeContext, found: (client: Requester, watches: readonly Watch[]) => void): void {
  for (const { client, watches } of store.watchIndex.firing(path, mode)) {
    if (mayObserve(store, client, path, change)) found(client, watches);
  }
}

/** Delivers an event for a changed node to every client allowed to see it. */
export function deliverNodeEvent(store: Store, path: string, mode: MatchMode, change: ChangeContext): void {
  forEachFiring(store, path, mode, change, (client, watches) => {
    for (const watch of watches) emit(store, client, eventPathFor(watch, path), watch.token);
  });
}

/**
 * Delivers a commit's events: which clients see which node's change, and
 * through which watches, is decided now, against the state each event is
 * judged by (`judging(i)` sets that state up for the i-th: C commits node by
 * node); each client gets them as one batch (see EventBatch), so no frame
 * is built before its connection drains to it.
 */
export function deliverEventBatches(
  store: Store, events: readonly (readonly [string, MatchMode, ChangeContext] | undefined)[], judging: (i: number) => void = () => {},
): void {
  const batches = new Map<Requester, MatchedEvent[]>();
  events.forEach((event, i) => {
    judging(i);
    if (!event) return;
    const [path, mode, change] = event;
    forEachFiring(store, path, mode, change, (client, watches) => {
      const matched = { path, watches, room: outputRoom(store, client) };
      const batch = batches.get(client);
      if (batch) batch.push(matched);
      else batches.set(client, [matched]);
    });
  });
  for (const [client, batch] of batches) store.eventBatches(client, { events: shareWatchLists(batch) });
}

/** One node's event as one client gets it: the path changed and the watches it fires, in firing order. */
export interface MatchedEvent {
  readonly path: string;
  readonly watches: readonly Watch[];
  /** The longest payload the guest's memory quota let through when this event was judged (C drops a longer one). */
  readonly room: number;
}

/**
 * A client's events of one commit. Every (event, watch) pair is one watch
 * event, `eventPathFor(watch, path)` and the watch's token, unless its
 * payload is longer than its event's `room`.
 */
export interface EventBatch {
  readonly events: readonly MatchedEvent[];
}

/** The watch events of `batch` in order, those the memory quota drops left out. */
export function* batchEvents(batch: EventBatch): Generator<[string, string]> {
  for (const { path, watches, room } of batch.events) {
    for (const watch of watches) {
      const eventPath = eventPathFor(watch, path);
      if (eventPath.length + watch.token.length + 2 <= room) yield [eventPath, watch.token];
    }
  }
}

/** Consecutive events firing the same watches share one list: a commit of many siblings keeps one. */
function shareWatchLists(batch: MatchedEvent[]): MatchedEvent[] {
  for (let i = 1; i < batch.length; i++) {
    const before = batch[i - 1]!.watches;
    const own = batch[i]!.watches;
    if (own !== before && own.length === before.length && own.every((w, j) => w === before[j])) batch[i] = { ...batch[i]!, watches: before };
  }
  return batch;
}

/** C's fire_watches for a node change made by a request. */
export function fireNodeEvent(ctx: OpContext, path: string, mode: MatchMode, record: NodeContents | null, oldPerms: Perms | null = null): void {
  if (ctx.tx) ctx.tx.queueEvent(path, mode);
  else deliverNodeEvent(ctx.store, path, mode, { record, oldPerms });
}

/**
 * May `client` see events of a special path? Where the special paths are
 * nodes (master) the ordinary rule applies, parent "/" included; 4.17 asks
 * its side list only.
 */
function mayObserveSpecial(store: Store, client: Requester, name: string): boolean {
  if (store.compat.specialPathsAreNodes) {
    const node = store.lookup(name);
    return node !== undefined && mayObserve(store, client, name, { record: store.withCurrentPerms(node), oldPerms: null });
  }
  const perms = store.specialPerms.get(name);
  return perms !== undefined && (permFor(client, perms) & PERM_READ) !== 0;
}

/**
 * Fires @introduceDomain or @releaseDomain: first the plain name, to every
 * client, then (master) the per-domain form `<name>/<domid>`. With
 * per-domain events the plain name goes only to depth-less watchers, and
 * the per-domain form to exact watchers of it and to watchers of the plain
 * name with a depth of at least 1; 4.17 knows only the plain name.
 */
export function fireSpecialEvent(store: Store, name: string, domid: number | undefined, plain: boolean): void {
  const perDomainEvents = store.compat.perDomainSpecialEvents;
  if (plain) {
    fireSpecial(store, name, name, (w) => w.path === name && (!perDomainEvents || w.depth === undefined));
  }
  if (perDomainEvents && domid !== undefined) {
    const perDomain = `${name}/${domid}`;
    fireSpecial(store, name, perDomain, (w) => w.path === perDomain || ((w.depth ?? 0) > 0 && watchMatches(w, perDomain, 'subtree')));
  }
}

function fireSpecial(store: Store, name: string, eventPath: string, matches: (w: Watch) => boolean): void {
  for (const client of store.clients.values()) {
    if (client.watches.length === 0 || !mayObserveSpecial(store, client, name)) continue;
    for (const watch of client.watches) if (matches(watch)) emit(store, client, eventPath, watch.token);
  }
}

/**
 * Runs `work` with the watch events it fires held back; returns what sends
 * them. If `work` fails, what it fired goes out at once.
 */
export function holdEvents(store: Store, work: () => void): () => void {
  const sink = store.events;
  const held: [Requester, string, string][] = [];
  store.events = (client, path, token) => held.push([client, path, token]);
  const send = () => {
    for (const [client, path, token] of held.splice(0)) sink(client, path, token);
  };
  try {
    work();
  } catch (e) {
    send();
    throw e;
  } finally {
    store.events = sink;
  }
  return send;
}

/** Hands an event to the sink unless it would break the guest's memory quota (C drops it). */
export function emit(store: Store, client: Requester, path: string, token: string): void {
  if (eventFits(store, client, path.length + token.length + 2)) store.events(client, path, token);
}
