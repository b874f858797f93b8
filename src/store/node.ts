/**
 * One stored node. Values are kept as latin1 strings — one byte per
 * character in V8, far smaller than a Buffer object per node.
 */
import type { ChildList } from './child-list.js';
import type { PermEntry, Perms } from './permissions.js';

/** What a node holds; the tree's nodes and a transaction's copies both have it. */
export interface NodeContents {
  value: string;
  perms: Perms;
  /** Global generation count of the last change. */
  gen: number;
  children: ChildList | null;
}

/** What a node's stored size depends on (C's record length). */
export interface SizedRecord {
  value: string;
  perms: Perms;
  children: { readonly byteLength: number } | null;
}

export class Node implements NodeContents {
  constructor(
    public value: string,
    public perms: Perms,
    public gen: number,
    public children: ChildList | null = null,
  ) {}
}

/** A committed node as saved: its path and what it holds (the tree's shape is in the paths). */
export interface SavedNode {
  path: string;
  value: string;
  perms: readonly PermEntry[];
  gen: number;
}

export function saveNode(path: string, record: NodeContents): SavedNode {
  return { path, value: record.value, perms: record.perms, gen: record.gen };
}

export function valueBytes(value: string): Buffer {
  return Buffer.from(value, 'latin1');
}

export function valueString(bytes: Buffer): string {
  return bytes.toString('latin1');
}
