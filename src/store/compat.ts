/**
 * Every behaviour that differs between C xenstored 4.17 and current upstream
 * (master), in one table. Code asks the table's named fields; only the
 * table itself knows which version it describes.
 */
import { DOMID_ANY } from '../wire/vocabulary.js';
import type { ErrorName } from '../wire/vocabulary.js';
import { QUOTA_DESCRIPTIONS, QUOTA_NAMES, type QuotaName } from './quotas.js';

/** The checks the quota gate (quota-gate.ts) makes, one per kind of request. */
export type GatedQuota =
  | 'nodes' | 'committed-nodes' | 'watches' | 'transactions' | 'transaction-nodes' | 'node-permissions' | 'node-size'
  | 'node-memory' | 'watch-memory';

export interface QuotaRule {
  /** The configured quota it is judged against. */
  readonly limit: QuotaName;
  /** `used`: what the request would bring the count to, in C's terms for that check. */
  readonly over: (used: number, quota: number) => boolean;
  readonly error: ErrorName;
  /** A refusal inside a transaction makes its commit fail (C's fail_transaction). */
  readonly poisons: boolean;
}

/** One row of CONTROL `quota`'s settings table: quota, the name shown, its description. */
export type QuotaRow = readonly [QuotaName, string, string];

export type XenVersion = 'master' | '4.17';

export interface Compat {
  readonly version: XenVersion;
  /** Highest message type with a handler; later ones answer ENOSYS. */
  readonly lastMessageType: number;
  /** Each quota check: comparison, error, whether it poisons a transaction. */
  readonly quotaRules: Readonly<Record<GatedQuota, QuotaRule>>;
  /** Quotas are copied per domain (master) rather than one global set. */
  readonly perDomainQuotas: boolean;
  /** 4.17 counts each new node of a chain as it is written; master once the request is done. */
  readonly nodesCountedAsWritten: boolean;
  /**
   * The memory quota judged is the requesting guest's (master), whoever is
   * charged; 4.17 judges the charged domain's own.
   */
  readonly memoryQuotaOfCaller: boolean;
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
  /** `live-update -s` takes `-v <version>`. */
  readonly liveUpdateVersionFlag: boolean;
  /** CONTROL `quota`: the settings table, and whether it keeps maxima (`quota max`). */
  readonly quotaTable: readonly QuotaRow[];
  readonly quotaMaxima: boolean;
  /** Rows of `quota <domid>` when maxima are not kept. */
  readonly quotaUsageRows: readonly QuotaName[];
  readonly softMemoryDescription: string;
  /** CONTROL `log` lists and takes +/- trace switches. */
  readonly logSwitches: boolean;
  /** CONTROL `help`: master's aligned synopses, or 4.17's tab-separated ones. */
  readonly alignedHelp: boolean;
  /** `help` and errors list the simulator's own commands (domain, dump, ...) too. */
  readonly listSimulatorCommands: boolean;
}

const ERR_ON_ADD = (used: number, quota: number): boolean => used >= quota;

/** A rule in force in both versions: `used` reaching the quota refuses. */
function reaching(limit: QuotaName, error: ErrorName, poisons = false): QuotaRule {
  return { limit, over: ERR_ON_ADD, error, poisons };
}

const MASTER: Compat = {
  version: 'master',
  lastMessageType: 26,
  // domain_quota_add_exceeds(d, what, 1): the count after this one reaches the quota.
  quotaRules: {
    nodes: { limit: 'nodes', over: (owned, quota) => owned + 1 >= quota, error: 'ENOSPC', poisons: false },
    'committed-nodes': reaching('nodes', 'ENOSPC'),
    watches: { limit: 'watches', over: (count, quota) => count + 1 >= quota, error: 'ENOSPC', poisons: false },
    transactions: { limit: 'transactions', over: (open, quota) => open + 1 >= quota, error: 'ENOSPC', poisons: false },
    'transaction-nodes': { limit: 'transaction-nodes', over: (touched, quota) => touched + 1 >= quota, error: 'ENOSPC', poisons: true },
    'node-permissions': reaching('node-permissions', 'ENOSPC'),
    'node-size': reaching('node-size', 'ENOSPC', true),
    'node-memory': reaching('memory', 'EIO', true),
    'watch-memory': reaching('memory', 'ENOMEM'),
  },
  perDomainQuotas: true,
  nodesCountedAsWritten: false,
  memoryQuotaOfCaller: true,
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
  liveUpdateVersionFlag: true,
  quotaTable: QUOTA_NAMES.map((q) => [q, q, QUOTA_DESCRIPTIONS[q]] as const),
  quotaMaxima: true,
  quotaUsageRows: QUOTA_NAMES,
  softMemoryDescription: QUOTA_DESCRIPTIONS.memory,
  logSwitches: true,
  alignedHelp: true,
  listSimulatorCommands: true,
};

const XEN_4_17: Compat = {
  version: '4.17',
  lastMessageType: 22,
  quotaRules: {
    nodes: reaching('nodes', 'ENOSPC'),
    'committed-nodes': reaching('nodes', 'ENOSPC'),
    watches: { limit: 'watches', over: (count, quota) => count > quota, error: 'E2BIG', poisons: false },
    transactions: { limit: 'transactions', over: (open, quota) => open > quota, error: 'ENOSPC', poisons: false },
    'transaction-nodes': reaching('transaction-nodes', 'ENOSPC', true),
    'node-permissions': { limit: 'node-permissions', over: (entries, quota) => entries > quota, error: 'ENOSPC', poisons: false },
    'node-size': reaching('node-size', 'ENOSPC', true),
    'node-memory': reaching('memory', 'EIO', true),
    'watch-memory': reaching('memory', 'ENOMEM'),
  },
  perDomainQuotas: false,
  nodesCountedAsWritten: true,
  memoryQuotaOfCaller: false,
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
  liveUpdateVersionFlag: false,
  quotaTable: [
    ['nodes', 'nodes', QUOTA_DESCRIPTIONS.nodes],
    ['watches', 'watches', QUOTA_DESCRIPTIONS.watches],
    ['transactions', 'transactions', 'Transactions per domain'],
    ['outstanding', 'outstanding', QUOTA_DESCRIPTIONS.outstanding],
    ['transaction-nodes', 'transaction-nodes', QUOTA_DESCRIPTIONS['transaction-nodes']],
    ['memory', 'memory', 'Total Xenstore memory per domain (error level)'],
    ['node-size', 'node-size', QUOTA_DESCRIPTIONS['node-size']],
    ['path-max', 'path-max', QUOTA_DESCRIPTIONS['path-max']],
    ['node-permissions', 'permissions', QUOTA_DESCRIPTIONS['node-permissions']],
  ],
  quotaMaxima: false,
  quotaUsageRows: ['nodes', 'watches', 'transactions', 'outstanding', 'memory'],
  softMemoryDescription: 'Total Xenstore memory per domain (warning level)',
  logSwitches: false,
  alignedHelp: false,
  listSimulatorCommands: false,
};

export const COMPAT: Readonly<Record<XenVersion, Compat>> = { master: MASTER, '4.17': XEN_4_17 };

export function isXenVersion(v: string): v is XenVersion {
  return v === 'master' || v === '4.17';
}
