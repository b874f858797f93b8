/**
 * The node operations, step for step in C xenstored's order so that the
 * first failing check decides the error: lookup with information hiding,
 * creation with inherited permissions, removal, and permission changes.
 */
import { fail, StoreError } from './errors.js';
import type { OpContext } from './context.js';
import { fireNodeEvent } from './events.js';
import type { NodeContents, SizedRecord } from './node.js';
import { baseName, parentPath } from './path.js';
import {
  permFor, PERM_OWNER, PERM_READ, PERM_WRITE, type PermEntry, type Perms,
} from './permissions.js';
import type { ErrorName } from '../wire/vocabulary.js';
import { enforce, enforceMemory } from './quota-gate.js';

export { PERM_READ, PERM_WRITE, PERM_OWNER };

/**
 * The node at `path` if the caller holds every bit of `perm`. Otherwise
 * EACCES or ENOENT — ENOENT only when the nearest existing ancestor grants
 * at least one of the bits, so a missing node cannot be probed for.
 */
export function getNode(ctx: OpContext, path: string, perm: number): NodeContents {
  const found = findNode(ctx, path, perm);
  if (typeof found === 'string') throw new StoreError(found);
  return found;
}

/**
 * getNode's answer without throwing: the record, or the error it would
 * throw. WRITE and MKDIR create on ENOENT, and an exception per created
 * node would cost more than the rest of the request.
 */
function findNode(ctx: OpContext, path: string, perm: number): NodeContents | ErrorName {
  const record = ctx.view.read(path);
  if (record && (permFor(ctx.client, record.perms) & perm) === perm) return record;
  return errnoFromParents(ctx, path, record ? 'EACCES' : 'ENOENT', perm);
}

function errnoFromParents(ctx: OpContext, path: string, code: ErrorName, perm: number): ErrorName {
  let name = path;
  let ancestor: NodeContents | null = null;
  do {
    name = parentPath(name);
    ancestor = ctx.view.read(name);
  } while (!ancestor && name !== '/');
  return ancestor && permFor(ctx.client, ancestor.perms) & perm ? code : 'EACCES';
}

/**
 * The quota checks of one request's node writes, made in C's order before
 * anything changes (C's write_node: record size, then memory): each record
 * is judged with the memory of the records written before it.
 */
class NodeWrites {
  private readonly pending = new Map<number, number>();
  /** Writes judged fit so far. */
  private written = 0;

  constructor(private readonly ctx: OpContext) {}

  /** The node quota, judged before the next new node's write. */
  countNode(used: number): void {
    this.guard(false, () => enforce(this.ctx.store, this.ctx.client, 'nodes', used));
  }

  /** A record replacing `old` (null: a new node) at `path`; the charge goes to `owner`. */
  write(path: string, record: SizedRecord, old: NodeContents | null): void {
    const { store, client, tx } = this.ctx;
    this.guard(true, () => {
      const size = store.nodeBytes(0, record);
      enforce(store, client, 'node-size', size, tx);
      // In a transaction the private copy is charged to the caller, under a longer key.
      const charged = tx ? client.domid : record.perms[0]!.domid;
      const key = tx ? String(tx.startGen).length + 1 + path.length : path.length;
      const refund = old && (tx || old.perms[0]!.domid === record.perms[0]!.domid) ? store.nodeBytes(key, old) : 0;
      const add = (this.pending.get(charged) ?? 0) + size + key - refund;
      enforceMemory(store, client, 'node-memory', charged, add, tx);
      this.pending.set(charged, add);
    });
    this.written++;
  }

  /**
   * A refusal keeps the generations C's write_node took before its checks:
   * one per write before it (undone, not given back), and the refused
   * write's own.
   */
  private guard(isWrite: boolean, check: () => void): void {
    try {
      check();
    } catch (e) {
      for (let i = this.written + (isWrite ? 1 : 0); i > 0; i--) this.ctx.store.nextGeneration();
      throw e;
    }
  }
}

/** A record as it will be written: `base` with some fields changed. */
function recordOf(base: NodeContents, change: Partial<SizedRecord>): SizedRecord {
  return { value: base.value, perms: base.perms, children: base.children, ...change };
}

/** The size of a child list not built yet. */
function childBytes(byteLength: number): SizedRecord['children'] {
  return byteLength === 0 ? null : { byteLength };
}

/** Creates `path` and any missing ancestors (C's construct_node + create_node). */
export function createNode(ctx: OpContext, path: string, value: string): void {
  const missing = [path];
  let ancestor = parentPath(path);
  let ancestorRecord = ctx.view.read(ancestor);
  while (!ancestorRecord) {
    if (ancestor === '/') fail('EIO', 'root node missing');
    missing.unshift(ancestor);
    ancestor = parentPath(ancestor);
    ancestorRecord = ctx.view.read(ancestor);
  }
  const { client, store } = ctx;
  const inherited = client.quotaBound
    ? store.perms.intern([{ ...ancestorRecord.perms[0]!, domid: client.domid }, ...ancestorRecord.perms.slice(1)])
    : ancestorRecord.perms;
  // C notes the creation before any quota check: a refused create still
  // makes the commit judge the node quota.
  if (ctx.tx) ctx.tx.createdNode = true;
  const owned = client.domain?.nodeCount ?? 0;
  // 4.17 counts each node as it is written; master only once the request is done.
  const countsAsWritten = !ctx.tx && store.compat.nodesCountedAsWritten;
  const writes = new NodeWrites(ctx);
  // Bottom up, as C writes them: the new node, its new parents, then the existing ancestor.
  for (let i = missing.length - 1, written = 0; i >= 0; i--, written++) {
    writes.countNode(owned + (countsAsWritten ? written : 0));
    const below = missing[i + 1];
    const record = { value: below ? '' : value, perms: inherited, children: childBytes(below ? baseName(below).length + 1 : 0) };
    writes.write(missing[i]!, record, null);
  }
  const grown = childBytes((ancestorRecord.children?.byteLength ?? 0) + baseName(missing[0]!).length + 1);
  writes.write(ancestor, recordOf(ancestorRecord, { children: grown }), ancestorRecord);
  ctx.view.createChain(ancestor, ancestorRecord, missing, value, () => inherited);
}

/** WRITE: overwrite, or create with missing parents; one event either way. */
export function writeNode(ctx: OpContext, path: string, value: string): void {
  const record = findNode(ctx, path, PERM_WRITE);
  if (record === 'ENOENT') {
    createNode(ctx, path, value);
    fireNodeEvent(ctx, path, 'subtree', null);
    return;
  }
  if (typeof record === 'string') throw new StoreError(record);
  new NodeWrites(ctx).write(path, recordOf(record, { value }), record);
  ctx.view.update(path, record, { value });
  fireNodeEvent(ctx, path, 'subtree', null);
}

/** MKDIR: an existing writable node is fine and fires nothing. */
export function makeDirectory(ctx: OpContext, path: string): void {
  const record = findNode(ctx, path, PERM_WRITE);
  if (record === 'ENOENT') {
    createNode(ctx, path, '');
    fireNodeEvent(ctx, path, 'subtree', null);
  } else if (typeof record === 'string') {
    throw new StoreError(record);
  }
}

/**
 * RM: needs write permission on the node only. A missing node is fine when
 * its parent exists. Events: the root with subtree matching, every removed
 * descendant with exact matching, children before parents.
 */
export function removeNode(ctx: OpContext, path: string): void {
  try {
    getNode(ctx, path, PERM_WRITE);
  } catch (e) {
    if (!(e instanceof StoreError) || e.code !== 'ENOENT') throw e;
    if (ctx.view.read(parentPath(path))) return;
    throw e;
  }
  if (path === '/') fail('EINVAL', 'cannot remove /');
  const parent = ctx.view.read(parentPath(path));
  if (!parent) fail('EINVAL', 'parent missing');
  ctx.view.removeSubtree(path, parent, (removed, record) => {
    fireNodeEvent(ctx, removed, removed === path ? 'subtree' : 'exact', record);
  });
}

/** SET_PERMS on a node (the special-path forms are handled by the caller). */
export function setNodePerms(ctx: OpContext, path: string, perms: Perms): void {
  const record = getNode(ctx, path, PERM_WRITE | PERM_OWNER);
  if (ctx.client.quotaBound && perms[0]!.domid !== record.perms[0]!.domid) fail('EPERM', 'only dom0 may change the owner');
  const oldPerms = record.perms;
  new NodeWrites(ctx).write(path, recordOf(record, { perms }), record);
  ctx.view.update(path, record, { perms });
  fireNodeEvent(ctx, path, 'subtree', null, oldPerms);
}

/**
 * Prepares SET_PERMS entries: entries for domains that do not exist are
 * kept but marked stale; a stale owner is ENOENT.
 */
export function resolveNewPerms(ctx: OpContext, entries: PermEntry[]): Perms {
  const perms = ctx.store.resolvePermDomains(entries, ctx.client);
  if (perms[0]!.stale) fail('ENOENT', `owner domain ${perms[0]!.domid} does not exist`);
  return perms;
}

/** DIRECTORY_PART: a slice of the child list after the node's generation. */
export function directoryPart(record: NodeContents, offset: number, payloadMax: number): Buffer {
  const gen = Buffer.from(`${record.gen}\0`, 'latin1');
  const list = record.children?.encode() ?? Buffer.alloc(0);
  if (offset >= list.length) return Buffer.concat([gen, Buffer.from([0])]);
  // As many whole names (NUL included) as fit in maxLength bytes: the slice
  // ends at the last NUL before the limit, found without visiting each name.
  const maxLength = payloadMax - gen.length - 1;
  const limit = offset + maxLength;
  const length = limit >= list.length ? list.length - offset : Math.max(0, list.lastIndexOf(0, limit - 1) + 1 - offset);
  const last = offset + length === list.length;
  return Buffer.concat([gen, list.subarray(offset, offset + length), last ? Buffer.from([0]) : Buffer.alloc(0)]);
}
