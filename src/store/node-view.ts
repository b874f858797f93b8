/**
 * The two ways an operation sees the nodes: straight through to the live
 * tree, or through a transaction's first-touch copies. Operations are
 * written once against `NodeView`; like C xenstored, every change takes a
 * fresh generation number in the same order, so DIRECTORY_PART generations
 * and conflict outcomes match.
 */
import { ChildList } from './child-list.js';
import { fail } from './errors.js';
import { Node, type NodeContents } from './node.js';
import { baseName, childPath, parentPath } from './path.js';
import type { Perms } from './permissions.js';
import { enforce } from './quota-gate.js';
import type { Store } from './store.js';
import { NO_GENERATION, StoreTransaction, type TouchedNode } from './transaction.js';
import type { Requester } from './requester.js';
import { walkNodes, walkTree } from './tree-walk.js';

export interface NodeView {
  /** The node as this view sees it, or null. Touches it in a transaction. */
  read(path: string): NodeContents | null;
  /** Replaces value and/or permissions of an existing node. */
  update(path: string, record: NodeContents, change: { value?: string; perms?: Perms }): void;
  /**
   * Creates `paths` (outermost first; each the parent of the next) below the
   * existing `ancestor`, all with `perms(i)`, the last one with `value`.
   */
  createChain(ancestor: string, ancestorRecord: NodeContents, paths: string[], value: string, perms: (i: number) => Perms): void;
  /**
   * Deletes `path` and everything below it, children before parents, calling
   * `removed` for each node as it goes; then drops it from its parent.
   */
  removeSubtree(path: string, parentRecord: NodeContents, removed: (path: string, record: NodeContents) => void): void;
}

/** Direct access to the live tree. */
export class LiveView implements NodeView {
  constructor(private readonly store: Store, private readonly client: Requester | undefined) {}

  read(path: string): NodeContents | null {
    const node = this.store.lookup(path);
    return node ? this.store.withCurrentPerms(node) : null;
  }

  update(path: string, record: NodeContents, change: { value?: string; perms?: Perms }): void {
    const node = this.store.lookup(path)!;
    const gen = this.store.nextGeneration();
    this.store.chargeNode(path, node, -1);
    if (change.value !== undefined) node.value = change.value;
    if (change.perms !== undefined) this.store.changeOwner(node.perms, change.perms, this.client);
    // Kept as read: an entry stale by the node's old generation stays stale
    // (C writes back the permissions read_node marked, chk_domain_generation).
    node.perms = this.store.persistPerms(change.perms ?? record.perms, gen);
    node.gen = gen;
    this.store.chargeNode(path, node, +1);
  }

  createChain(ancestor: string, ancestorRecord: NodeContents, paths: string[], value: string, perms: (i: number) => Perms): void {
    const created = paths.map((_, i) => new Node('', perms(i), 0));
    created[created.length - 1]!.value = value;
    for (let i = created.length - 1; i >= 0; i--) {
      const node = created[i]!;
      const below = created[i + 1];
      if (below) (node.children = new ChildList()).add(baseName(paths[i + 1]!), below);
      node.gen = this.store.nextGeneration();
      node.perms = this.store.persistPerms(node.perms, node.gen);
      this.store.countNode(node.perms, +1, this.client);
      this.store.chargeNode(paths[i]!, node, +1);
    }
    const parent = this.store.lookup(ancestor)!;
    this.store.chargeNode(ancestor, parent, -1);
    parent.children = (parent.children ?? new ChildList()).writable();
    parent.children.add(baseName(paths[0]!), created[0]);
    parent.gen = this.store.nextGeneration();
    parent.perms = this.store.persistPerms(ancestorRecord.perms, parent.gen);
    this.store.chargeNode(ancestor, parent, +1);
  }

  removeSubtree(path: string, parentRecord: NodeContents, removed: (path: string, record: NodeContents) => void): void {
    const parentPathName = parentPath(path);
    const parent = this.store.lookup(parentPathName)!;
    // After each child C rewrites its parent: one generation after every node but the first removed.
    walkTree(path, this.store.lookup(path)!, () => {}, (at, node, depth) => {
      this.store.nextGeneration();
      const record = this.store.withCurrentPerms(node);
      this.store.countNode(node.perms, -1, this.client);
      // As C's delnode_sub: the node's memory is refunded before its event is judged against the quota.
      this.store.chargeNode(at, node, -1);
      removed(at, record);
      if (depth > 0) this.store.nextGeneration();
    });
    this.store.chargeNode(parentPathName, parent, -1);
    parent.children = parent.children!.writable();
    parent.children.delete(baseName(path));
    parent.gen = this.store.nextGeneration();
    parent.perms = this.store.persistPerms(parentRecord.perms, parent.gen);
    this.store.chargeNode(parentPathName, parent, +1);
  }

}

/** Access through a transaction's private copies. */
export class TransactionView implements NodeView {
  constructor(
    private readonly store: Store,
    private readonly client: Requester,
    private readonly tx: StoreTransaction,
  ) {}

  read(path: string): NodeContents | null {
    const touched = this.tx.touched.get(path);
    // The caller may change the copy it gets: measure it again.
    this.store.copyTouched(this.client, this.tx, path);
    if (touched) return touched.record;
    this.checkTouchQuota();
    const node = this.store.lookup(path);
    const record = node ? this.store.withCurrentPerms(node) : null;
    this.tx.touched.set(path, {
      checkGen: true,
      gen: node ? node.gen : NO_GENERATION,
      oldPerms: record ? record.perms : null,
      modified: false,
      record: record && { value: record.value, perms: record.perms, gen: record.gen, children: record.children?.freeze() ?? null },
      fire: undefined,
    });
    return this.tx.touched.get(path)!.record;
  }

  update(path: string, record: NodeContents, change: { value?: string; perms?: Perms }): void {
    const gen = this.store.nextGeneration();
    if (change.value !== undefined) record.value = change.value;
    if (change.perms !== undefined) {
      this.tx.addNodeCount(record.perms[0]!.domid, -1);
      this.tx.addNodeCount(change.perms[0]!.domid, +1);
      record.perms = change.perms;
    }
    record.perms = this.store.persistPerms(record.perms, gen);
    record.gen = gen;
    this.touch(path).modified = true;
  }

  createChain(ancestor: string, ancestorRecord: NodeContents, paths: string[], value: string, perms: (i: number) => Perms): void {
    for (let i = paths.length - 1; i >= 0; i--) {
      const gen = this.store.nextGeneration();
      const below = paths[i + 1];
      const children = below ? new ChildList() : null;
      children?.add(baseName(below!), undefined);
      const record: NodeContents = {
        value: i === paths.length - 1 ? value : '',
        perms: this.store.persistPerms(perms(i), gen),
        gen,
        children,
      };
      const touched = this.touch(paths[i]!);
      touched.record = record;
      touched.modified = true;
      this.tx.addNodeCount(record.perms[0]!.domid, +1);
    }
    ancestorRecord.children = (ancestorRecord.children ?? new ChildList()).writable();
    ancestorRecord.children.append(baseName(paths[0]!));
    ancestorRecord.gen = this.store.nextGeneration();
    ancestorRecord.perms = this.store.persistPerms(ancestorRecord.perms, ancestorRecord.gen);
    this.touch(ancestor).modified = true;
  }

  removeSubtree(path: string, parentRecord: NodeContents, removed: (path: string, record: NodeContents) => void): void {
    walkNodes(path, this.read(path)!, (at, record) => this.childCopies(at, record), () => {}, (at, record, _depth, parent) => {
      this.store.nextGeneration();
      const touched = this.touch(at);
      touched.record = null;
      touched.modified = true;
      removed(at, record);
      this.tx.addNodeCount(record.perms[0]!.domid, -1);
      if (parent) {
        // C rewrites the parent after every child it drops.
        parent.children = parent.children!.writable();
        parent.children.delete(baseName(at));
        parent.gen = this.store.nextGeneration();
      }
    });
    // The parent's copy predates the node (created since the transaction saw
    // the parent): C xenstored finds no child entry to remove and fails.
    if (!parentRecord.children?.has(baseName(path))) fail('EIO', `${path} missing from its parent's child list`);
    parentRecord.children = parentRecord.children.writable();
    parentRecord.children.delete(baseName(path));
    parentRecord.gen = this.store.nextGeneration();
    this.touch(parentPath(path)).modified = true;
  }

  /** The copies of a copy's children, read through this view as the walk reaches each. */
  private *childCopies(path: string, record: NodeContents): Generator<[string, NodeContents]> {
    // The names as they were: the list loses each child as it is removed.
    for (const name of [...(record.children?.names() ?? [])]) {
      const child = this.read(childPath(path, name));
      // A stale copy names a child that is gone: C's tree walk stops here.
      if (!child) fail('EIO', `child ${name} of ${path} is gone`);
      yield [name, child];
    }
  }

  private touch(path: string): TouchedNode {
    let touched = this.tx.touched.get(path);
    if (!touched) {
      this.checkTouchQuota();
      touched = { checkGen: false, gen: 0, oldPerms: null, modified: false, record: null, fire: undefined };
      this.tx.touched.set(path, touched);
    }
    this.store.copyTouched(this.client, this.tx, path);
    return touched;
  }

  private checkTouchQuota(): void {
    enforce(this.store, this.client, 'transaction-nodes', this.tx.touched.size, this.tx);
  }
}
