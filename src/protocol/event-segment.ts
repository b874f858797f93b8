/**
 * A commit's watch events for one connection, held as the store decided
 * them (each changed node with the watches it fires) instead of as frames:
 * a frame is built only when the connection's output reaches it, so a
 * commit firing 124k events neither builds them before its reply nor
 * holds up other connections meanwhile.
 *
 * Which events are kept is settled when the segment is queued, by the
 * rules a one-by-one queueing applies (Connection.queueEvent): too long
 * for a frame, past the memory quota's room, past the backlog limit, or
 * identical to an event still queued (ahead of it, or earlier in it).
 * Only sizes are computed for that; a path string is built only where a
 * duplicate is possible.
 */
import { HEADER_SIZE, PAYLOAD_MAX } from '../wire/vocabulary.js';
import type { EventBatch } from '../store/events.js';
import { eventPathFor, eventPathLength, type Watch } from '../store/watches.js';
import type { RequestCharge } from './outstanding.js';

export interface SegmentRules {
  /** Bytes of events the connection's queue may still take. */
  readonly space: number;
  /** Is an identical event queued ahead of the segment? Absent when no event is. */
  readonly queuedAhead?: (path: string, token: string) => boolean;
}

export class EventSegment {
  /** Bytes of the events not yet taken. */
  byteLength = 0;
  /** Events not yet taken. */
  count = 0;
  /** Pairs dropped when queued (1), by flat pair number; absent while none is. */
  private skipped: Uint8Array | undefined;
  /** Flat number of each event's first pair. */
  private readonly firstPair: number[] = [];
  private event = 0;
  private watch = 0;
  private pair = 0;
  /** Events by the paths their watchers see (relative or absolute). */
  readonly byPath = new Map<string, number[]>();

  constructor(
    private readonly batch: EventBatch,
    rules: SegmentRules,
    readonly charge?: RequestCharge,
    /** Time (ms) after which what is left of it is dropped. */
    readonly expires?: number,
  ) {
    let pair = 0;
    batch.events.forEach(({ path, watches, room }, e) => {
      this.firstPair.push(pair);
      for (const relativeTo of relativeForms(watches)) {
        const seen = eventPathFor({ path, token: '', relativeTo, depth: undefined }, path);
        const list = this.byPath.get(seen);
        if (list) list.push(e);
        else this.byPath.set(seen, [e]);
      }
      const tokensRepeat = hasRepeatedToken(watches);
      for (let i = 0; i < watches.length; i++, pair++) {
        const watch = watches[i]!;
        const payload = eventPathLength(watch, path) + watch.token.length + 2;
        let keep = payload <= room && payload <= PAYLOAD_MAX && this.byteLength + HEADER_SIZE + payload <= rules.space;
        if (keep && (rules.queuedAhead || tokensRepeat)) {
          const eventPath = eventPathFor(watch, path);
          keep = !rules.queuedAhead?.(eventPath, watch.token) && !(tokensRepeat && this.keptBefore(path, watches, i, eventPath, pair));
        }
        if (keep) {
          this.byteLength += HEADER_SIZE + payload;
          this.count++;
        } else {
          (this.skipped ??= new Uint8Array(countPairs(batch)))[pair] = 1;
        }
      }
    });
    this.skipToKept();
  }

  /** The next event (path as its watcher sees it, token), taken out. */
  take(): [string, string] {
    const { path, watches } = this.batch.events[this.event]!;
    const watch = watches[this.watch]!;
    const taken: [string, string] = [eventPathFor(watch, path), watch.token];
    this.byteLength -= HEADER_SIZE + taken[0].length + taken[1].length + 2;
    this.count--;
    this.advance();
    this.skipToKept();
    return taken;
  }

  /** The events not yet taken, in order, left in place. */
  *remaining(): Generator<[string, string]> {
    for (let e = this.event; e < this.batch.events.length; e++) {
      const { path, watches } = this.batch.events[e]!;
      for (let i = e === this.event ? this.watch : 0; i < watches.length; i++) {
        if (!this.skipped?.[this.firstPair[e]! + i]) yield [eventPathFor(watches[i]!, path), watches[i]!.token];
      }
    }
  }

  /** Is this event (path as its watcher sees it) among those not yet taken? */
  has(eventPath: string, token: string): boolean {
    for (const e of this.byPath.get(eventPath) ?? []) {
      if (e < this.event) continue;
      const { path, watches } = this.batch.events[e]!;
      for (let i = e === this.event ? this.watch : 0; i < watches.length; i++) {
        const w = watches[i]!;
        if (w.token === token && !this.skipped?.[this.firstPair[e]! + i] && eventPathFor(w, path) === eventPath) return true;
      }
    }
    return false;
  }

  private advance(): void {
    this.pair++;
    if (++this.watch === this.batch.events[this.event]!.watches.length) {
      this.watch = 0;
      this.event++;
    }
  }

  private skipToKept(): void {
    if (!this.skipped) return;
    while (this.event < this.batch.events.length && this.skipped[this.pair]) this.advance();
  }

  /** Was an identical event kept earlier in this node's watches? */
  private keptBefore(path: string, watches: readonly Watch[], i: number, eventPath: string, pair: number): boolean {
    const token = watches[i]!.token;
    for (let j = 0; j < i; j++) {
      const w = watches[j]!;
      if (w.token === token && !this.skipped?.[pair - i + j] && eventPathFor(w, path) === eventPath) return true;
    }
    return false;
  }
}

function countPairs(batch: EventBatch): number {
  let n = 0;
  for (const { watches } of batch.events) n += watches.length;
  return n;
}

/** The homes of the relative watches among these, and undefined for the absolute ones. */
const forms = new WeakMap<readonly Watch[], (string | undefined)[]>();
function relativeForms(watches: readonly Watch[]): (string | undefined)[] {
  let known = forms.get(watches);
  if (known === undefined) forms.set(watches, (known = [...new Set(watches.map((w) => w.relativeTo))]));
  return known;
}

/** Do two of these watches share a token (so one event could repeat another)? */
const repeats = new WeakMap<readonly Watch[], boolean>();
function hasRepeatedToken(watches: readonly Watch[]): boolean {
  let known = repeats.get(watches);
  if (known === undefined) repeats.set(watches, (known = new Set(watches.map((w) => w.token)).size < watches.length));
  return known;
}
