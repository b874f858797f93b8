/**
 * Guest domains as xenstored sees them: INTRODUCE, RELEASE, RESUME,
 * SET_TARGET, and what happens when the hypervisor reports a domain shut
 * down or gone (owned nodes removed, @releaseDomain fired).
 */
import { DOMID_SELF, INTRODUCE_DOMAIN, RELEASE_DOMAIN } from '../wire/vocabulary.js';
import type { Requester } from './requester.js';
import { opContext, type OpContext } from './context.js';
import type { Domain } from './domains.js';
import { fail, StoreError } from './errors.js';
import { fireSpecialEvent } from './events.js';
import { atoi, strictDomid } from './numbers.js';
import { removeNode } from './operations.js';
import type { Perms } from './permissions.js';
import type { Store } from './store.js';
import { walkTree } from './tree-walk.js';

/** Parses a domid argument the way the configured Xen version does. */
export function parseDomid(store: Store, text: string | undefined): number {
  if (text === undefined) fail('EINVAL', 'missing domid');
  if (!store.compat.strictDomid) return atoi(text) >>> 0;
  const domid = strictDomid(text);
  if (domid === undefined) fail('EINVAL', `bad domid "${text}"`);
  return domid;
}

/** What the daemon must do around the store when domains come and go. */
export interface DomainHooks {
  /** A ring connection was (re)set: its queued I/O must be discarded. */
  connectionReset(client: Requester): void;
  /** A ring connection is gone for good. */
  connectionClosed(client: Requester): void;
}

export interface Introduction {
  domain: Domain;
  client: Requester;
}

export function introduce(store: Store, hooks: DomainHooks, domid: number, port: number): Introduction {
  if (port === 0) fail('EINVAL', 'event channel 0');
  if (!store.hypervisor.exists(domid)) fail('EINVAL', `domain ${domid} does not exist`);
  const domain = store.domainObject(domid);
  let client = clientOf(store, domain);
  if (!domain.introduced || !client) {
    domain.introduced = true;
    domain.shutdownReported = false;
    domain.uniqueId = store.hypervisor.info(domid)!.uniqueId;
    client = store.addDomainClient(domain);
    if (domid !== 0) fireSpecialEvent(store, INTRODUCE_DOMAIN, domid, true);
  }
  domain.port = port;
  store.dropWatchesAndTransactions(client);
  hooks.connectionReset(client);
  return { domain, client };
}

/** The ring connection of an introduced domain (ENOENT / EINVAL as C). */
export function connectedClient(store: Store, domid: number): Requester {
  const domain = store.domains.introduced(domid);
  if (!domain) fail('ENOENT', `domain ${domid} not introduced`);
  const client = clientOf(store, domain);
  if (!client) fail('EINVAL', `domain ${domid} has no connection`);
  return client;
}

export function clientOf(store: Store, domain: Domain): Requester | undefined {
  for (const client of store.clients.values()) if (client.domain === domain) return client;
  return undefined;
}

export function release(store: Store, hooks: DomainHooks, domid: number): void {
  if (domid === 0) fail('EINVAL', 'cannot release dom0');
  destroyConnection(store, hooks, connectedClient(store, domid));
}

/**
 * Does C destroy the domain only after answering `caller`'s RELEASE (its
 * events then follow the OK)? C's main loop holds a reference on the
 * connection after the one it serves (4.17 xenstored_core.c:2948-2966,
 * master core.c:2856-2865), so when that is the released domain's ring,
 * do_release's talloc_free only drops a reference, and destroy_domain runs
 * when the loop lets go, after the reply is queued. C's connection list is
 * in creation order, as the store's clients are.
 */
export function releaseIsDeferred(store: Store, caller: Requester, domid: number): boolean {
  let callerSeen = false;
  for (const client of store.clients.values()) {
    if (callerSeen) return client.domain !== undefined && client.domid === domid;
    callerSeen = client === caller;
  }
  return false;
}

export function resume(store: Store, domid: number): void {
  if (domid === 0) fail('EINVAL', 'cannot resume dom0');
  connectedClient(store, domid).domain!.shutdownReported = false;
}

export function setTarget(store: Store, domid: number, targetDomid: number): void {
  const client = connectedClient(store, domid);
  connectedClient(store, targetDomid);
  client.target = targetDomid;
}

export function isIntroduced(store: Store, domid: number): boolean {
  return domid === DOMID_SELF || store.domains.introduced(domid) !== undefined;
}

/** Drops a domain's connection and then the domain itself. */
function destroyConnection(store: Store, hooks: DomainHooks, client: Requester): void {
  store.removeClient(client);
  for (const other of store.clients.values()) if (other.target === client.domid) other.target = undefined;
  hooks.connectionClosed(client);
  destroyDomain(store, client.domain!);
}

/**
 * Forgets a domain: its nodes go (or pass to dom0 with keep-orphans), its
 * permission entries are cleaned, and @releaseDomain fires if it was
 * introduced.
 */
function destroyDomain(store: Store, domain: Domain): void {
  removeOwnedNodes(store, domain);
  cleanSpecialPerms(store, domain.domid);
  store.domains.delete(domain.domid);
  if (domain.introduced) fireSpecialEvent(store, RELEASE_DOMAIN, domain.domid, true);
}

function removeOwnedNodes(store: Store, domain: Domain): void {
  if (domain.nodeCount <= 0) return;
  const dom0 = store.addSocketClient();
  try {
    const ctx = opContext(store, dom0, undefined);
    walkTree('/', store.root, (path, node) => {
      // Every owned node found: the rest of the tree can be skipped.
      if (domain.nodeCount <= 0) return false;
      if (node.perms[0]!.domid !== domain.domid) return true;
      if (!store.keepOrphans) {
        // As C, a node that cannot go (the root) stays, and so does what is below it.
        tryRemoveNode(ctx, path);
        return false;
      }
      const orphaned = ownedBy(store, node.perms, 0);
      store.chargeNode(path, node, -1);
      store.changeOwner(node.perms, orphaned, undefined);
      node.perms = orphaned;
      store.chargeNode(path, node, +1);
      return true;
    });
  } finally {
    store.clients.delete(dom0.serial);
  }
}

function tryRemoveNode(ctx: OpContext, path: string): void {
  try {
    removeNode(ctx, path);
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
  }
}

function ownedBy(store: Store, perms: Perms, domid: number): Perms {
  return store.perms.intern([{ ...perms[0]!, domid }, ...perms.slice(1)]);
}

function withoutDomain(store: Store, perms: Perms, domid: number): Perms {
  const owner = perms[0]!.domid === domid ? { ...perms[0]!, domid: 0 } : perms[0]!;
  return store.perms.intern([owner, ...perms.slice(1).filter((e) => e.domid !== domid)]);
}

function cleanSpecialPerms(store: Store, domid: number): void {
  for (const [name, perms] of store.specialPerms) store.specialPerms.set(name, withoutDomain(store, perms, domid));
  if (!store.compat.removeDeadDomainPerms) return;
  for (const [path, node] of store.specialNodes) {
    store.chargeNode(path, node, -1);
    node.perms = withoutDomain(store, node.perms, domid);
    store.chargeNode(path, node, +1);
  }
  walkTree('/', store.root, (path, node) => {
    if (node.perms.length > 1 && node.perms.some((e, i) => i > 0 && e.domid === domid)) {
      store.chargeNode(path, node, -1);
      node.perms = store.perms.intern([node.perms[0]!, ...node.perms.slice(1).filter((e) => e.domid !== domid)]);
      store.chargeNode(path, node, +1);
    }
  });
}

/**
 * The hypervisor reported a change (C's check_domains): announce newly shut
 * down domains once, destroy the ones that are dying or gone, and forget
 * domain objects the hypervisor no longer has.
 */
export function checkDomains(store: Store, hooks: DomainHooks): void {
  let notify = false;
  for (let again = true; again; ) {
    again = false;
    for (const domain of store.domains.all()) {
      const info = store.hypervisor.info(domain.domid);
      const sameIncarnation = info !== undefined && (domain.uniqueId === 0n || info.uniqueId === domain.uniqueId);
      if (!domain.introduced) {
        if (!info) {
          destroyDomain(store, domain);
          again = true;
          break;
        }
        continue;
      }
      if (sameIncarnation) {
        if ((info.state === 'shutdown' || info.state === 'crashed') && !domain.shutdownReported) {
          domain.shutdownReported = true;
          notify = true;
          if (store.compat.perDomainSpecialEvents) fireSpecialEvent(store, RELEASE_DOMAIN, domain.domid, false);
        }
        if (info.state !== 'dying') continue;
      }
      const client = clientOf(store, domain);
      if (client) {
        destroyConnection(store, hooks, client);
        notify = false;
        again = true;
        break;
      }
    }
  }
  if (notify) fireSpecialEvent(store, RELEASE_DOMAIN, undefined, true);
}
