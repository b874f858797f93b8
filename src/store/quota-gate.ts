/**
 * The one place a request is judged against a quota (C's
 * domain_quota_add_exceeds and domain_chk_quota): whether the connection
 * is bound by quotas at all, which limit applies (the domain's own copy or
 * the global one), which comparison and error this Xen version uses, and
 * whether the refusal poisons the transaction it happened in.
 */
import { HEADER_SIZE } from '../wire/vocabulary.js';
import type { Requester } from './requester.js';
import type { GatedQuota } from './compat.js';
import { fail } from './errors.js';
import type { QuotaName } from './quotas.js';
import type { Store } from './store.js';
import type { StoreTransaction } from './transaction.js';

/** The quota in force for `client` (0: no limit). */
export function quotaFor(store: Store, client: Requester, name: QuotaName): number {
  return store.compat.perDomainQuotas && client.domain ? client.domain.quotas[name] : store.quotas[name];
}

/** Would `used` break the `check` quota for `client`? Unbound clients never do. */
export function exceeds(store: Store, client: Requester, check: GatedQuota, used: number): boolean {
  if (!client.quotaBound) return false;
  const rule = store.compat.quotaRules[check];
  const quota = quotaFor(store, client, rule.limit);
  return quota > 0 && rule.over(used, quota);
}

/** Refuses the request (and poisons `tx` where C does) when `used` breaks the quota. */
export function enforce(store: Store, client: Requester, check: GatedQuota, used: number, tx?: StoreTransaction): void {
  if (exceeds(store, client, check, used)) refuse(store, check, tx);
}

function refuse(store: Store, check: GatedQuota, tx: StoreTransaction | undefined): never {
  const rule = store.compat.quotaRules[check];
  if (tx && rule.poisons) tx.failed = true;
  return fail(rule.error, `${rule.limit} quota`);
}

/**
 * The memory quota, for `add` bytes charged to `chargedDomid` by a request
 * of `client`. 4.17 judges the charged domain against the global quota
 * (a guest's node written by dom0 counts); master judges the requesting
 * guest's own quota, whoever is charged.
 */
export function enforceMemory(
  store: Store, client: Requester, check: 'node-memory' | 'watch-memory', chargedDomid: number, add: number, tx?: StoreTransaction,
): void {
  if (overMemory(store, client, chargedDomid, add)) refuse(store, check, tx);
}

/** Would charging `add` more bytes to `chargedDomid` break the memory quota? */
export function overMemory(store: Store, client: Requester, chargedDomid: number, add: number): boolean {
  return add >= memoryHeadroom(store, client, chargedDomid);
}

/** Bytes that would break the memory quota if charged to `chargedDomid` by `client` (Infinity: no limit). */
function memoryHeadroom(store: Store, client: Requester, chargedDomid: number): number {
  const charged = store.domains.get(chargedDomid);
  const bound = store.compat.memoryQuotaOfCaller ? client.quotaBound : chargedDomid !== 0;
  if (!charged || !bound) return Infinity;
  const quota = store.compat.memoryQuotaOfCaller ? quotaFor(store, client, 'memory') : store.quotas.memory;
  return quota > 0 ? quota - store.memoryOf(charged) : Infinity;
}

/**
 * Output queued for a guest is charged too (C's send_reply): a reply
 * longer than C's fixed 16-byte buffer that would break the quota is
 * replaced by ENOMEM.
 */
export function replyFits(store: Store, client: Requester, payloadLength: number): boolean {
  return payloadLength <= FIXED_REPLY_BUFFER || eventFits(store, client, payloadLength);
}

/** A watch event is checked whatever its size (C's send_event): one that would break the quota is dropped. */
export function eventFits(store: Store, client: Requester, payloadLength: number): boolean {
  return !overMemory(store, client, client.domid, payloadLength + HEADER_SIZE);
}

/**
 * The longest event payload `eventFits` lets through now (a commit's
 * events are judged against it, see MatchedEvent).
 */
export function outputRoom(store: Store, client: Requester): number {
  return memoryHeadroom(store, client, client.domid) - HEADER_SIZE - 1;
}

/** C's DEFAULT_BUFFER_SIZE: replies up to this size are never refused. */
const FIXED_REPLY_BUFFER = 16;
