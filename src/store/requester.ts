/**
 * A requester: one connection as the store sees it, the identity requests
 * are checked against, plus the watches and transactions it owns. The
 * protocol layer's connection holds one of these; nothing here knows about
 * sockets or bytes.
 */
import type { Domain } from './domains.js';
import type { PermIdentity } from './permissions.js';
import type { StoreTransaction } from './transaction.js';
import type { Watch } from './watches.js';

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
