/**
 * Quota names, defaults and descriptions. Values are plain numbers; 0 means
 * "no limit", as on the wire and on C xenstored's command line.
 */

export const QUOTA_NAMES = [
  'nodes', 'watches', 'outstanding', 'memory', 'transactions',
  'transaction-nodes', 'node-permissions', 'path-max', 'node-size',
] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];
export type Quotas = Record<QuotaName, number>;

export const QUOTA_DESCRIPTIONS: Record<QuotaName, string> = {
  nodes: 'Nodes per domain',
  watches: 'Watches per domain',
  outstanding: 'Outstanding requests per domain',
  memory: 'Total Xenstore memory per domain',
  transactions: 'Active transactions per domain',
  'transaction-nodes': 'Max. number of accessed nodes per transaction',
  'node-permissions': 'Max. number of permissions per node',
  'path-max': 'Max. length of a node path',
  'node-size': 'Max. size of a node',
};

export const DEFAULT_QUOTAS: Readonly<Quotas> = Object.freeze({
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  memory: 2621440,
  transactions: 10,
  'transaction-nodes': 1024,
  'node-permissions': 5,
  'path-max': 2048,
  'node-size': 2048,
});

/** Soft quotas only warn; C xenstored has one, for memory. */
export const DEFAULT_SOFT_MEMORY = 2097152;

export function isQuotaName(name: string): name is QuotaName {
  return (QUOTA_NAMES as readonly string[]).includes(name);
}
