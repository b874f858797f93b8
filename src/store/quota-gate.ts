/**
 * The one place a request is judged against a quota (C's
 * domain_quota_add_exceeds and domain_chk_quota): whether the connection
 * is bound by quotas at all, which limit applies (the domain's own copy or
 * the global one), which comparison and error this Xen version uses, and
 * whether the refusal poisons the transaction it happened in.
 */
import type { Client } from './client.js';
import type { GatedQuota } from './compat.js';
import { fail } from './errors.js';
import type { QuotaName } from './quotas.js';
import type { Store } from './store.js';
import type { Transaction } from './transaction.js';

/** The quota in force for `client` (0: no limit). */
export function quotaFor(store: Store, client: Client, name: QuotaName): number {
  return store.compat.perDomainQuotas && client.domain ? client.domain.quotas[name] : store.quotas[name];
}

/** Would `used` break the `check` quota for `client`? Unbound clients never do. */
export function exceeds(store: Store, client: Client, check: GatedQuota, used: number): boolean {
  if (!client.quotaBound) return false;
  const rule = store.compat.quotaRules[check];
  const quota = quotaFor(store, client, rule.limit);
  return quota > 0 && rule.over(used, quota);
}

/** Refuses the request (and poisons `tx` where C does) when `used` breaks the quota. */
export function enforce(store: Store, client: Client, check: GatedQuota, used: number, tx?: Transaction): void {
  if (exceeds(store, client, check, used)) refuse(store, check, tx);
}

function refuse(store: Store, check: GatedQuota, tx: Transaction | undefined): never {
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
  store: Store, client: Client, check: 'node-memory' | 'watch-memory', chargedDomid: number, add: number, tx?: Transaction,
): void {
  const charged = store.domains.get(chargedDomid);
  const bound = store.compat.memoryQuotaOfCaller ? client.quotaBound : chargedDomid !== 0;
  if (!charged || !bound) return;
  const rule = store.compat.quotaRules[check];
  const quota = store.compat.memoryQuotaOfCaller ? quotaFor(store, client, rule.limit) : store.quotas[rule.limit];
  if (quota > 0 && rule.over(store.memoryOf(charged) + add, quota)) refuse(store, check, tx);
}
