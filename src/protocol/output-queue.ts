/**
 * A connection's messages not yet handed to its transport (C's out_list),
 * in order. Appending, taking the first and asking whether an identical
 * watch event is still queued are O(1), but for the events of a commit
 * still held as one EventSegment, whose frames are built as they are taken.
 */
import { encodedEvent } from './event-frame.js';
import { EventSegment, type SegmentRules } from './event-segment.js';
import type { RequestCharge } from './outstanding.js';
import type { EventBatch } from '../store/events.js';

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
  private items: (Queued | EventSegment)[] = [];
  /** The segments among `items` with events not yet taken, by the event paths they hold. */
  private readonly segments = new Map<string, Set<EventSegment>>();
  private head = 0;
  private bytes = 0;
  /** Bytes ever queued: what a connection's requests produced, however fast it reads. */
  queuedTotal = 0;
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
    if (this.events.get(token)?.has(path)) return true;
    for (const segment of this.segments.get(path) ?? []) if (segment.has(path, token)) return true;
    return false;
  }

  /**
   * Appends a commit's events as a segment, keeping those a one-by-one
   * queueing would (see EventSegment) within `limit` bytes of events.
   */
  pushEvents(batch: EventBatch, limit: number, charge?: RequestCharge, expires?: number): void {
    const anyQueued = this.events.size > 0 || this.segments.size > 0;
    const rules: SegmentRules = { space: limit - this.bytes, queuedAhead: anyQueued ? (p, t) => this.hasEvent(p, t) : undefined };
    const segment = new EventSegment(batch, rules, charge, expires);
    if (segment.count === 0) return;
    this.items.push(segment);
    for (const path of segment.byPath.keys()) {
      const holding = this.segments.get(path);
      if (holding) holding.add(segment);
      else this.segments.set(path, new Set([segment]));
    }
    this.bytes += segment.byteLength;
    this.queuedTotal += segment.byteLength;
    charge?.add(segment.count);
  }

  push(item: Queued): void {
    this.items.push(item);
    this.bytes += item.bytes.length;
    this.queuedTotal += item.bytes.length;
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
    const first = this.items[this.head];
    if (first instanceof EventSegment) {
      const item = this.takeFrom(first);
      if (first.count === 0) this.advanceHead();
      return item;
    }
    if (first) {
      this.advanceHead();
      this.forget(first);
    }
    return first;
  }

  private advanceHead(): void {
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  private takeFrom(segment: EventSegment): Queued {
    const [path, token] = segment.take();
    const bytes = encodedEvent(path, token);
    this.bytes -= bytes.length;
    if (segment.count === 0) this.forgetSegment(segment);
    return { bytes, charge: segment.charge };
  }

  private forgetSegment(segment: EventSegment): void {
    for (const path of segment.byPath.keys()) {
      const holding = this.segments.get(path)!;
      if (holding.size > 1) holding.delete(segment);
      else this.segments.delete(path);
    }
  }

  /** Takes out every message `drop` selects (a segment goes whole), keeping the others in order; settles their charges. */
  dropWhere(drop: (item: { readonly expires?: number }) => boolean): void {
    const kept: (Queued | EventSegment)[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (!drop(item)) kept.push(item);
      else if (item instanceof EventSegment) {
        this.forgetSegment(item);
        this.bytes -= item.byteLength;
        for (let n = item.count; n > 0; n--) item.charge?.settle();
      } else {
        this.forget(item);
        item.charge?.settle();
      }
    }
    this.items = kept;
    this.head = 0;
  }

  /** The queued messages' bytes, first to last, left in place. */
  peekAll(): Buffer[] {
    const all: Buffer[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (item instanceof EventSegment) for (const [path, token] of item.remaining()) all.push(encodedEvent(path, token));
      else all.push(item.bytes);
    }
    return all;
  }

  /** The first queued message with an expiry time. */
  firstExpiring(): { readonly expires?: number } | undefined {
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
