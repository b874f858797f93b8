/**
 * A requester: one connection as the store sees it, the identity requests
 * are checked against, plus the watches and transactions it owns. The
 * protocol layer's connection holds one of these; nothing here knows about
 * sockets or bytes.
 */
import { SUPPORTED_FEATURES } from '../wire/vocabulary.js';
import type { Domain } from './domains.js';
import type { PermIdentity } from './permissions.js';
import type { Store } from './store.js';
import { loadTransaction, saveTransaction, type SavedTransaction, type StoreTransaction } from './transaction.js';
import { loadWatch, saveWatch, type SavedWatch, type Watch } from './watches.js';

export class Requester implements PermIdentity {
  readonly watches: Watch[] = [];
  readonly transactions = new Map<number, StoreTransaction>();
  nextTransactionId = 1;
  /** When the count of open transactions last went from 0 to 1 (ms). */
  transactionsSince = 0;
  /** SET_TARGET: this client acts with the rights of that domain too. */
  target: number | undefined = undefined;
  /**
   * C's "ignored connection" flag, only carried through live update: this
   * daemon never sets it (a guest's framing error detaches the guest and
   * drops its watches and transactions, and the domain's connection stays).
   */
  ignored = false;

  constructor(
    /** Unique per daemon run, in creation order (events go out in this order). */
    readonly serial: number,
    /** The domid requests are made as (sockets: the store's own domain). */
    readonly domid: number,
    readonly privileged: boolean,
    /** Base for relative paths: /local/domain/<domid>. */
    readonly home: string,
    /** The guest domain behind a ring connection; none for sockets. */
    readonly domain: Domain | undefined,
    readonly anyDomid: number | undefined,
  ) {}

  /** Unprivileged guests are the only ones quotas apply to. */
  get quotaBound(): boolean {
    return !this.privileged;
  }
}

/** The feature bits in force for a client: its domain's, or all a socket client could ask for. */
export function requesterFeatures(client: Requester): number {
  return client.domain ? client.domain.features : SUPPORTED_FEATURES;
}

/** A client as saved; a ring client is the connection of domain `domid`, a socket client acts as dom0. */
export interface SavedRequester {
  ring: boolean;
  domid: number;
  target: number | undefined;
  nextTransactionId: number;
  transactionsSince: number;
  ignored: boolean;
  watches: SavedWatch[];
  transactions: SavedTransaction[];
}

export function saveRequester(client: Requester): SavedRequester {
  return {
    ring: client.domain !== undefined, domid: client.domid, target: client.target,
    nextTransactionId: client.nextTransactionId, transactionsSince: client.transactionsSince, ignored: client.ignored,
    watches: client.watches.map(saveWatch), transactions: [...client.transactions.values()].map(saveTransaction),
  };
}

/** Gives a freshly registered client its saved state. */
/** Watches go through the store's index, permission lists into its table. */
export function loadRequester(client: Requester, saved: SavedRequester, store: Store): void {
  client.target = saved.target;
  client.nextTransactionId = saved.nextTransactionId;
  client.transactionsSince = saved.transactionsSince;
  client.ignored = saved.ignored;
  for (const w of saved.watches) store.watch(client, loadWatch(w, client.home));
  for (const t of saved.transactions) store.openTransaction(client, loadTransaction(t, store.perms));
}
