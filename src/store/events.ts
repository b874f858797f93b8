/**
 * Watch firing: which clients may see a change (permission filtering) and
 * which of their watches match. Inside a transaction events are only noted;
 * they fire at commit.
 */
import type { Client } from './client.js';
import type { OpContext } from './context.js';
import type { NodeRecord } from './node.js';
import { parentPath } from './path.js';
import { permFor, PERM_READ, type Perms } from './permissions.js';
import type { Store } from './store.js';
import { eventPathFor, watchMatches, type MatchMode } from './watches.js';

/** May `client` learn that `path` changed? (C's watch_permitted) */
function mayObserve(store: Store, client: Client, path: string, record: NodeRecord | null, oldPerms: Perms | null): boolean {
  if (oldPerms && permFor(client, oldPerms) & PERM_READ) return true;
  const node = record ?? liveRecord(store, path);
  if (!node) return false;
  if (permFor(client, node.perms) & PERM_READ) return true;
  const parent = liveRecord(store, parentPath(path));
  return parent !== null && (permFor(client, parent.perms) & PERM_READ) !== 0;
}

function liveRecord(store: Store, path: string): NodeRecord | null {
  const node = store.lookup(path);
  return node ? store.withCurrentPerms(node) : null;
}

/** Delivers an event for a changed node to every client allowed to see it. */
export function deliverNodeEvent(store: Store, path: string, mode: MatchMode, record: NodeRecord | null, oldPerms: Perms | null): void {
  for (const client of store.clients.values()) {
    if (client.watches.length === 0 || !mayObserve(store, client, path, record, oldPerms)) continue;
    for (const watch of client.watches) {
      if (watchMatches(watch, path, mode)) store.events(client, eventPathFor(watch, path), watch.token);
    }
  }
}

/** C's fire_watches for a node change made by a request. */
export function fireNodeEvent(ctx: OpContext, path: string, mode: MatchMode, record: NodeRecord | null, oldPerms: Perms | null = null): void {
  if (ctx.tx) ctx.tx.queueEvent(path, mode);
  else deliverNodeEvent(ctx.store, path, mode, record, oldPerms);
}

/** May `client` see events of a special path? */
function mayObserveSpecial(store: Store, client: Client, name: string): boolean {
  const perms = store.compat.specialPathsAreNodes ? store.lookup(name)?.perms : store.specialPerms.get(name);
  return perms !== undefined && (permFor(client, perms) & PERM_READ) !== 0;
}

/**
 * Fires @introduceDomain or @releaseDomain. With per-domain events (master)
 * `<name>/<domid>` goes to exact watchers of it and to watchers of the plain
 * name with a depth of at least 1, and the plain name only to depth-less
 * watchers; 4.17 knows only the plain name.
 */
export function fireSpecialEvent(store: Store, name: string, domid: number | undefined, plain: boolean): void {
  const perDomainEvents = store.compat.perDomainSpecialEvents;
  const perDomain = perDomainEvents && domid !== undefined ? `${name}/${domid}` : undefined;
  for (const client of store.clients.values()) {
    if (client.watches.length === 0 || !mayObserveSpecial(store, client, name)) continue;
    for (const watch of client.watches) {
      if (perDomain !== undefined && (watch.path === perDomain || (watch.path === name && (watch.depth ?? 0) >= 1))) {
        store.events(client, perDomain, watch.token);
      }
      if (plain && watch.path === name && (!perDomainEvents || watch.depth === undefined)) {
        store.events(client, name, watch.token);
      }
    }
  }
}
