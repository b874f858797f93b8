/**
 * The ordered child names of one node (creation order, as C xenstored keeps
 * them). A transaction that takes a snapshot freezes the list; whoever wants
 * to change a frozen list copies it first, so snapshots never move.
 */
import type { Node } from './node.js';

export class ChildList {
  private frozen = false;
  private encoded: Buffer | undefined;
  private bytes = 0;

  constructor(
    private readonly entries = new Map<string, Node | undefined>(),
    /**
     * The listing order once a name is listed twice (see append); until
     * then the map's order is the listing.
     */
    private order: string[] | undefined = undefined,
  ) {
    for (const name of order ?? entries.keys()) this.bytes += Buffer.byteLength(name, 'latin1') + 1;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of the NUL-terminated names, as counted by node-size quotas. */
  get byteLength(): number {
    return this.bytes;
  }

  get(name: string): Node | undefined {
    return this.entries.get(name);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** [name, node] pairs in order. */
  children(): IterableIterator<[string, Node | undefined]> {
    return this.entries.entries();
  }

  /** Marks the list shared and returns it. */
  freeze(): this {
    this.frozen = true;
    return this;
  }

  /** This list if it may be changed in place, else a private copy. */
  writable(): ChildList {
    return this.frozen ? new ChildList(new Map(this.entries), this.order && [...this.order]) : this;
  }

  add(name: string, node: Node | undefined): void {
    if (!this.entries.has(name)) {
      this.bytes += Buffer.byteLength(name, 'latin1') + 1;
      this.order?.push(name);
    }
    this.entries.set(name, node);
    this.encoded = undefined;
  }

  /**
   * A new child of a transaction's private copy, listed the way C's
   * add_child does it: appended even when a stale copy lists the name
   * already (the child was removed since the copy was taken), so the name
   * then shows twice until the (conflicting) transaction ends.
   */
  append(name: string): void {
    if (!this.entries.has(name)) return this.add(name, undefined);
    (this.order ??= [...this.entries.keys()]).push(name);
    this.bytes += Buffer.byteLength(name, 'latin1') + 1;
    this.encoded = undefined;
  }

  /** Drops the name's first listing, as C's remove_child_entry does. */
  delete(name: string): void {
    if (!this.entries.has(name)) return;
    if (this.order) {
      this.order.splice(this.order.indexOf(name), 1);
      if (!this.order.includes(name)) this.entries.delete(name);
    } else {
      this.entries.delete(name);
    }
    this.bytes -= Buffer.byteLength(name, 'latin1') + 1;
    this.encoded = undefined;
  }

  /** The wire form: every name NUL-terminated, built once per change. */
  encode(): Buffer {
    if (!this.encoded) {
      const out = Buffer.allocUnsafe(this.bytes);
      let offset = 0;
      for (const name of this.order ?? this.entries.keys()) {
        offset += out.write(name, offset, 'latin1');
        out[offset++] = 0;
      }
      this.encoded = out;
    }
    return this.encoded;
  }
}
