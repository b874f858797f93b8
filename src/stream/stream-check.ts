import { recordTypeName, recordTypeOf, type DecodedRecord, type QuotaEntry } from './records.js';
import { isSpecialPath, parentPath } from '../store/path.js';
import { StreamError } from './stream-error.js';

/*
 * Semantic checks on a decoded record list, independent of any daemon: the
 * order rules of migration-stream.md §1 and §2.7 and the uniqueness rules a
 * restore relies on. The reader has already checked each record on its own.
 */

export interface CheckOptions {
  /**
   * Paths that exist in the receiving store before the stream is applied,
   * so committed nodes may hang below them. Default: just the root `/`,
   * which every store has (a `/` record in the stream overwrites it).
   */
  preExisting?: Iterable<string>;
}

/**
 * Why `path` is not a valid XenStore path, or undefined if it is. Node paths
 * are `/`, absolute paths or special `@name` paths; watch paths may also be
 * relative (to the domain's home), as the client gave them.
 */
export function pathProblem(path: string, allowRelative: boolean): string | undefined {
  if (path === '') return 'is empty';
  if (path === '/') return undefined;
  const bad = /[^A-Za-z0-9\-/_@]/.exec(path);
  if (bad) return `contains ${JSON.stringify(bad[0])} (allowed: A-Z a-z 0-9 - / _ @)`;
  if (path.startsWith('@')) {
    if (path.length === 1) return 'is a bare @';
    // Watches may name the per-domain forms, e.g. @releaseDomain/5.
    if (path.endsWith('/') || path.includes('//')) return 'is a malformed special @ path';
    return undefined;
  }
  if (!path.startsWith('/') && !allowRelative) return 'is not absolute';
  if (path.endsWith('/')) return 'ends with /';
  if (path.includes('//')) return 'contains //';
  return undefined;
}

/** Parent of an absolute non-root path; undefined for `/` and special `@` paths, which have none. */
function parentOf(path: string): string | undefined {
  return path === '/' || isSpecialPath(path) ? undefined : parentPath(path);
}

function inconsistent(d: DecodedRecord, reason: string): StreamError {
  const site = { offset: d.offset, recordIndex: d.index, recordType: recordTypeName(recordTypeOf(d.record)) };
  return new StreamError('XS_STREAM_INCONSISTENT', site, reason);
}

/** Index of the first quota with an empty name, or -1. */
function emptyQuotaName(quotas: readonly QuotaEntry[]): number {
  return quotas.findIndex((q) => q.name === '');
}

/** Label of an earlier record, for "already …" messages. */
function label(d: DecodedRecord): string {
  return `${recordTypeName(recordTypeOf(d.record))} #${d.index}`;
}

/**
 * Checks records one at a time, in stream order, so that a restore can
 * check and apply each record as it decodes it. `check` returns the first
 * problem as a StreamError located at the offending record, or undefined if
 * the record can be applied after those before it.
 */
export class StreamChecker {
  private readonly known: Set<string>;
  /** Committed node paths restored so far, with their record index. */
  private readonly restored = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly conns = new Map<number, DecodedRecord>();
  private readonly txs = new Map<string, DecodedRecord>();
  private readonly domains = new Map<number, DecodedRecord>();
  private readonly globals = new Map<string, DecodedRecord>();
  private firstOther: DecodedRecord | undefined;

  constructor(options: CheckOptions = {}) {
    this.known = new Set(options.preExisting ?? ['/']);
  }

  check(d: DecodedRecord): StreamError | undefined {
    const { record } = d;
    const fail = (reason: string): StreamError => inconsistent(d, reason);

    switch (record.kind) {
      case 'global':
      case 'globalQuota': {
        if (this.firstOther) return fail(`must come before all other records, but ${label(this.firstOther)} precedes it`);
        const earlier = this.globals.get(record.kind);
        if (earlier) return fail(`appears twice (first as ${label(earlier)})`);
        this.globals.set(record.kind, d);
        if (record.kind === 'globalQuota') {
          const empty = emptyQuotaName([...record.domainQuotas, ...record.globalQuotas]);
          if (empty >= 0) return fail(`quota #${empty} has an empty name`);
        }
        return undefined;
      }
      case 'unknown':
        return undefined; // skipped by appliers, wherever it is
      default:
        this.firstOther ??= d;
    }

    switch (record.kind) {
      case 'connection': {
        if (record.connId === 0) return fail('conn-id 0 is reserved for committed nodes');
        const earlier = this.conns.get(record.connId);
        if (earlier) return fail(`conn-id ${record.connId} already used by ${label(earlier)}`);
        this.conns.set(record.connId, d);
        break;
      }
      case 'watch': {
        if (!this.conns.has(record.connId)) return fail(`conn-id ${record.connId} has no earlier CONNECTION_DATA`);
        const problem = pathProblem(record.path, true);
        if (problem) return fail(`watch path ${JSON.stringify(record.path)} ${problem}`);
        break;
      }
      case 'transaction': {
        if (!this.conns.has(record.connId)) return fail(`conn-id ${record.connId} has no earlier CONNECTION_DATA`);
        if (record.txId === 0) return fail('tx-id 0 means "no transaction"');
        const key = `${record.connId}:${record.txId}`;
        const earlier = this.txs.get(key);
        if (earlier) return fail(`tx-id ${record.txId} of conn-id ${record.connId} already declared by ${label(earlier)}`);
        this.txs.set(key, d);
        break;
      }
      case 'node': {
        const { path } = record;
        const problem = pathProblem(path, false);
        if (problem) return fail(`path ${JSON.stringify(path)} ${problem}`);
        if (record.connId === 0) {
          if (record.perms.length === 0) return fail(`committed node ${path} has no permissions (the first is the owner)`);
          const earlier = this.restored.get(path);
          if (earlier !== undefined) return fail(`committed node ${path} already restored by NODE_DATA #${earlier}`);
          const parent = parentOf(path);
          if (parent !== undefined && !this.known.has(parent) && !this.restored.has(parent)) {
            return fail(`parent ${parent} of ${path} is neither pre-existing nor restored by an earlier NODE_DATA`);
          }
          this.restored.set(path, d.index);
          break;
        }
        if (!this.txs.has(`${record.connId}:${record.txId}`)) {
          return fail(`transaction ${record.txId} of conn-id ${record.connId} has no earlier TRANSACTION_DATA`);
        }
        if (record.access === 0) {
          if (record.perms.length !== 0 || record.value.length !== 0) {
            return fail(`pending node ${path} is deleted (access 0) but has ${record.perms.length} permissions and a ${record.value.length}-byte value (both must be empty)`);
          }
        } else if (record.perms.length === 0) {
          return fail(`pending node ${path} has no permissions; only a deleted node (access 0) may have none`);
        }
        const key = `${record.connId}:${record.txId}:${path}`;
        if (this.pending.has(key)) return fail(`pending node ${path} appears twice in transaction ${record.txId} of conn-id ${record.connId}`);
        this.pending.add(key);
        break;
      }
      case 'domain': {
        const earlier = this.domains.get(record.domid);
        if (earlier) return fail(`domain ${record.domid} already described by ${label(earlier)}`);
        this.domains.set(record.domid, d);
        const empty = emptyQuotaName(record.quotas);
        if (empty >= 0) return fail(`quota #${empty} has an empty name`);
        break;
      }
    }
    return undefined;
  }
}

/**
 * Checks order and consistency of `records` (as decoded, in stream order).
 * Returns the first problem as a StreamError located at the offending record,
 * or undefined if the list could be applied.
 */
export function checkStream(records: readonly DecodedRecord[], options: CheckOptions = {}): StreamError | undefined {
  const checker = new StreamChecker(options);
  for (const d of records) {
    const problem = checker.check(d);
    if (problem) return problem;
  }
  return undefined;
}
