/**
 * Every behaviour that differs between C xenstored 4.17 and current upstream
 * (master), in one table. Code asks the table; the sites that still test
 * `compat.version` directly (grep for it) are the exceptions left to move here.
 */
import { DOMID_ANY } from '../wire/vocabulary.js';
import type { ErrorName } from '../wire/vocabulary.js';

export type XenVersion = 'master' | '4.17';

export interface Compat {
  readonly version: XenVersion;
  /** Highest message type with a handler; later ones answer ENOSYS. */
  readonly lastMessageType: number;
  /** Over-quota tests: `count` already used, `quota` configured (> 0). */
  readonly overWatchQuota: (count: number, quota: number) => boolean;
  readonly watchQuotaError: ErrorName;
  readonly overTransactionQuota: (open: number, quota: number) => boolean;
  readonly overTransactionNodeQuota: (touched: number, quota: number) => boolean;
  readonly overPermissionQuota: (entries: number, quota: number) => boolean;
  readonly overNodeQuota: (owned: number, quota: number) => boolean;
  /** Fixed bytes of a node record on top of perms, value and child list. */
  readonly nodeRecordHeader: number;
  /** Path length rule: applies to privileged callers too, and whether `>=` rejects. */
  readonly pathLimitForPrivileged: boolean;
  readonly pathLimitInclusive: boolean;
  /** Domain ids: 4.17 uses atoi; master strict decimal up to 65535. */
  readonly strictDomid: boolean;
  /** Special @ paths are hidden nodes with permissions (master), or side lists. */
  readonly specialPathsAreNodes: boolean;
  /** WATCH accepts a third "depth" string. */
  readonly watchDepth: boolean;
  /** Per-domain @introduceDomain/<id> and @releaseDomain/<id> events. */
  readonly perDomainSpecialEvents: boolean;
  /** DOMID_ANY in permission entries matches every domain (or undefined). */
  readonly anyDomid: number | undefined;
  /** Non-owner entries of a destroyed domain are removed from every node. */
  readonly removeDeadDomainPerms: boolean;
  /** UNWATCH validates the path (EINVAL) before looking for the watch. */
  readonly unwatchValidatesPath: boolean;
  /** Migration stream version written by live update. */
  readonly streamVersion: 1 | 2;
}

const MASTER: Compat = {
  version: 'master',
  lastMessageType: 26,
  overWatchQuota: (count, quota) => count + 1 >= quota,
  watchQuotaError: 'ENOSPC',
  overTransactionQuota: (open, quota) => open + 1 >= quota,
  overTransactionNodeQuota: (touched, quota) => touched + 1 >= quota,
  overPermissionQuota: (entries, quota) => entries >= quota,
  overNodeQuota: (owned, quota) => owned + 1 >= quota,
  nodeRecordHeader: 16,
  pathLimitForPrivileged: false,
  pathLimitInclusive: true,
  strictDomid: true,
  specialPathsAreNodes: true,
  watchDepth: true,
  perDomainSpecialEvents: true,
  anyDomid: DOMID_ANY,
  removeDeadDomainPerms: true,
  unwatchValidatesPath: true,
  streamVersion: 2,
};

const XEN_4_17: Compat = {
  version: '4.17',
  lastMessageType: 22,
  overWatchQuota: (count, quota) => count > quota,
  watchQuotaError: 'E2BIG',
  overTransactionQuota: (open, quota) => open > quota,
  overTransactionNodeQuota: (touched, quota) => touched >= quota,
  overPermissionQuota: (entries, quota) => entries > quota,
  overNodeQuota: (owned, quota) => owned >= quota,
  nodeRecordHeader: 24,
  pathLimitForPrivileged: true,
  pathLimitInclusive: false,
  strictDomid: false,
  specialPathsAreNodes: false,
  watchDepth: false,
  perDomainSpecialEvents: false,
  anyDomid: undefined,
  removeDeadDomainPerms: false,
  unwatchValidatesPath: false,
  streamVersion: 1,
};

export const COMPAT: Readonly<Record<XenVersion, Compat>> = { master: MASTER, '4.17': XEN_4_17 };

export function isXenVersion(v: string): v is XenVersion {
  return v === 'master' || v === '4.17';
}
