/**
 * When each connection's requests are handled, so that no client keeps the
 * daemon from the others. A connection gets at most REQUESTS_PER_TURN
 * requests handled per turn of the event loop, and none while it may not
 * be served (C's outstanding-request limit for guests, or too much of its
 * output waiting); its other requests wait, reading from its socket stops
 * meanwhile (the bytes stay in the kernel, as in C's ring), and connections
 * with waiting requests take turns, with every socket's input read between
 * turns.
 */
import type { Frame } from '../protocol/frame.js';
import type { Connection } from '../protocol/connection.js';

/** Enough to answer a pipelining client in few turns; one big request is bounded by its own work. */
const REQUESTS_PER_TURN = 32;

export interface RequestHost {
  /** May `conn` have a request handled now? */
  mayServe(conn: Connection): boolean;
  handle(conn: Connection, frame: Frame): void;
  /** Sends what the handled requests queued. */
  flush(): void;
}

export class RequestScheduler {
  private readonly waiting = new Set<Connection>();
  private turnPending = false;

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

  private serve(conn: Connection): void {
    for (let budget = REQUESTS_PER_TURN; budget > 0 && conn.hasRequests && this.host.mayServe(conn); budget--) {
      this.host.handle(conn, conn.takeRequest()!);
    }
    if (conn.hasRequests) {
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
    for (const conn of [...this.waiting]) if (this.host.mayServe(conn)) this.serve(conn);
    this.host.flush();
  };
}
