/**
 * A connection's messages not yet handed to its transport (C's out_list),
 * in order. Appending, taking the first and asking whether an identical
 * watch event is still queued are O(1).
 */
import type { RequestCharge } from './outstanding.js';

export interface Queued {
  readonly bytes: Buffer;
  /** Path and token of an event that may be dropped as a duplicate. */
  readonly event?: EventKey;
  /** The request this message answers or was caused by. */
  readonly charge?: RequestCharge;
  /** Time (ms) after which an event still queued is dropped. */
  readonly expires?: number;
}

export interface EventKey {
  readonly path: string;
  readonly token: string;
}

export class OutputQueue {
  private items: Queued[] = [];
  private head = 0;
  private bytes = 0;
  /**
   * Queued events by token, then path. Tokens come first because a watch's
   * token is one string object whose hash V8 keeps, where event paths are
   * often fresh strings.
   */
  private readonly events = new Map<string, Map<string, number>>();

  get length(): number {
    return this.items.length - this.head;
  }

  get byteLength(): number {
    return this.bytes;
  }

  hasEvent(path: string, token: string): boolean {
    return this.events.get(token)?.has(path) ?? false;
  }

  push(item: Queued): void {
    this.items.push(item);
    this.bytes += item.bytes.length;
    if (item.event) {
      const { path, token } = item.event;
      let paths = this.events.get(token);
      if (!paths) this.events.set(token, (paths = new Map()));
      paths.set(path, (paths.get(path) ?? 0) + 1);
    }
    item.charge?.add();
  }

  /** The first message, taken out of the queue (its charge is the caller's to settle). */
  shift(): Queued | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head++]!;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.forget(item);
    return item;
  }

  /** Takes out every message `drop` selects, keeping the others in order. */
  removeWhere(drop: (item: Queued) => boolean): Queued[] {
    const kept: Queued[] = [];
    const dropped: Queued[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (drop(item)) {
        dropped.push(item);
        this.forget(item);
      } else {
        kept.push(item);
      }
    }
    this.items = kept;
    this.head = 0;
    return dropped;
  }

  /** The queued messages, first to last, left in place. */
  peekAll(): Queued[] {
    return this.items.slice(this.head);
  }

  /** The first queued message with an expiry time. */
  firstExpiring(): Queued | undefined {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.expires !== undefined) return this.items[i];
    return undefined;
  }

  private forget(item: Queued): void {
    this.bytes -= item.bytes.length;
    if (!item.event) return;
    const { path, token } = item.event;
    const paths = this.events.get(token)!;
    const n = paths.get(path)! - 1;
    if (n > 0) paths.set(path, n);
    else if (paths.size > 1) paths.delete(path);
    else this.events.delete(token);
  }
}
