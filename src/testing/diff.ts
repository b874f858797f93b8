/**
 * A short, readable difference between two snapshots: one line per node,
 * connection part, domain or quota that differs, naming it, so that a
 * failing property says what changed instead of printing two whole trees.
 */
import type { Snapshot, SnapshotNode } from './snapshot.js';

const show = (v: unknown): string => (v === undefined ? 'absent' : JSON.stringify(v));
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Lines `what: before -> after` for each entry of two keyed collections that differs. */
function keyed<T>(label: string, a: Record<string, T>, b: Record<string, T>, describe: (x: T | undefined, y: T | undefined) => string): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => !same(a[k], b[k])).map((k) => `${label} ${k}: ${describe(a[k], b[k])}`);
}

function nodeChange(x: SnapshotNode | null | undefined, y: SnapshotNode | null | undefined): string {
  if (!x || !y) return `${x === undefined ? 'absent' : x === null ? 'deleted' : 'present'} -> ${y === undefined ? 'absent' : y === null ? 'deleted' : 'present'}`;
  const parts: string[] = [];
  if (x.value !== y.value) parts.push(`value ${show(x.value)} -> ${show(y.value)}`);
  if (!same(x.perms, y.perms)) parts.push(`perms ${x.perms.join(',')} -> ${y.perms.join(',')}`);
  if (x.generation !== y.generation) parts.push(`generation ${show(x.generation)} -> ${show(y.generation)}`);
  return parts.join(', ');
}

/** The differences from `a` to `b`, one line each; empty when they are equal. At most `limit` lines (default 20). */
export function diffSnapshots(a: Snapshot, b: Snapshot, limit = 20): string[] {
  const lines = keyed('node', a.nodes, b.nodes, nodeChange);
  const count = Math.max(a.connections.length, b.connections.length);
  for (let i = 0; i < count; i++) {
    const x = a.connections[i];
    const y = b.connections[i];
    const name = `connection ${i}`;
    if (!x || !y) {
      lines.push(`${name}: ${x ? 'present' : 'absent'} -> ${y ? 'present' : 'absent'}`);
      continue;
    }
    if (x.kind !== y.kind || x.domid !== y.domid) lines.push(`${name}: ${x.kind} ${x.domid ?? ''} -> ${y.kind} ${y.domid ?? ''}`);
    if (!same(x.watches, y.watches)) lines.push(`${name} watches: ${show(x.watches)} -> ${show(y.watches)}`);
    const txs = (c: typeof x) => Object.fromEntries(c.transactions.map((t) => [String(t.id), t]));
    lines.push(...keyed(`${name} transaction`, txs(x), txs(y), (s, t) => {
      if (!s || !t) return `${s ? 'open' : 'absent'} -> ${t ? 'open' : 'absent'}`;
      const parts = same(s.read, t.read) ? [] : [`read ${show(s.read)} -> ${show(t.read)}`];
      parts.push(...keyed('wrote', s.wrote, t.wrote, nodeChange));
      return parts.join('; ');
    }));
  }
  lines.push(...keyed('domain', a.domains, b.domains, (x, y) => `${show(x)} -> ${show(y)}`));
  if (!same(a.quotas, b.quotas)) lines.push(`quotas: ${show(a.quotas)} -> ${show(b.quotas)}`);
  if (a.generation !== b.generation) lines.push(`generation: ${show(a.generation)} -> ${show(b.generation)}`);
  return lines.length > limit ? [...lines.slice(0, limit), `... and ${lines.length - limit} more`] : lines;
}
