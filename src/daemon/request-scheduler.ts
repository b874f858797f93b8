/**
 * When each connection's requests are handled, so that no client keeps the
 * daemon from the others. A connection gets at most REQUESTS_PER_TURN
 * requests handled per turn of the event loop, fewer once they queued
 * OUTPUT_PER_TURN bytes of replies and events, and none while it may not
 * be served (C's outstanding-request limit for guests, or too much of its
 * output waiting); its other requests wait, reading from its socket stops
 * meanwhile (the bytes stay in the kernel, as in C's ring), and connections
 * with waiting requests take turns, with every socket's input read between
 * turns. Guests' requests handled between two turns, as they arrive or in
 * a turn, are bounded all together too (GUEST_WORK_PER_TURN; the rest wait
 * for the next turn), so dom0's requests never wait behind more than that.
 */
import type { Frame } from '../protocol/frame.js';
import type { Connection } from '../protocol/connection.js';

/** Enough to answer a pipelining client in few turns; one big request is bounded by its own work. */
const REQUESTS_PER_TURN = 32;

/**
 * Output one connection's requests may queue in a turn before it lets the
 * others go first: a guest whose every write fires 127 watch events
 * otherwise builds 4,000 events a turn while dom0 waits.
 */
const OUTPUT_PER_TURN = 16 * 1024;

/** Guest requests handled, and output they queue, from one turn to the next. */
const GUEST_WORK_PER_TURN = { requests: 64, output: 64 * 1024 };

export interface RequestHost {
  /** May `conn` have a request handled now? */
  mayServe(conn: Connection): boolean;
  /** Bytes queued for `conn` and not yet sent. */
  /** Bytes of output ever queued for `conn`: the turn budgets count what requests produce, not what is left unsent. */
  outputProduced(conn: Connection): number;
  handle(conn: Connection, frame: Frame): void;
  /** Sends what the handled requests queued. */
  flush(): void;
}

export class RequestScheduler {
  private readonly waiting = new Set<Connection>();
  private turnPending = false;
  /** Guest work left until the next turn. */
  private guestWork = { ...GUEST_WORK_PER_TURN };

  constructor(private readonly host: RequestHost) {}

  /** Requests arrived from `conn`: handle what may be handled now, keep the rest. */
  received(conn: Connection, frames: Frame[]): void {
    conn.queueRequests(frames);
    this.serve(conn);
    this.host.flush();
  }

  /** Something changed that may let `conn` be served again (output sent, a request settled). */
  wake(conn: Connection): void {
    if (this.waiting.has(conn) && this.host.mayServe(conn)) this.scheduleTurn();
  }

  /** A request may have freed what a waiting connection waits for (a guest's memory). */
  wakeAll(): void {
    for (const conn of this.waiting) this.wake(conn);
  }

  /** `conn` is gone or was reset. */
  forget(conn: Connection): void {
    this.waiting.delete(conn);
  }

  /** Handles what `conn` may have handled now, within its own and (a guest) the guests' budget. */
  private serve(conn: Connection): void {
    const guest = conn.client.quotaBound;
    const work = this.guestWork;
    const before = this.host.outputProduced(conn);
    const outputLimit = Math.min(OUTPUT_PER_TURN, guest ? work.output : Infinity);
    const requests = Math.min(REQUESTS_PER_TURN, guest ? work.requests : Infinity);
    let handled = 0;
    while (handled < requests && conn.hasRequests && this.host.mayServe(conn) && this.host.outputProduced(conn) - before < outputLimit) {
      this.host.handle(conn, conn.takeRequest()!);
      handled++;
    }
    if (guest && handled > 0) {
      work.requests -= handled;
      work.output -= this.host.outputProduced(conn) - before;
      this.scheduleTurn(); // which renews the guests' budget
    }
    if (conn.hasRequests) {
      // Last in line for the next turn; its further requests stay in the kernel meanwhile.
      this.waiting.delete(conn);
      this.waiting.add(conn);
      conn.stopReading();
      if (this.host.mayServe(conn)) this.scheduleTurn();
    } else if (this.waiting.delete(conn)) {
      conn.startReading();
    }
  }

  private scheduleTurn(): void {
    if (this.turnPending) return;
    this.turnPending = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.turnPending = false;
    this.guestWork = { ...GUEST_WORK_PER_TURN };
    for (const conn of [...this.waiting]) if (this.host.mayServe(conn)) this.serve(conn);
    this.host.flush();
  };
}
