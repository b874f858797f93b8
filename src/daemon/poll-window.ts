/**
 * Adaptive polling for a client that sends requests one after another.
 * Waking a sleeping process costs several microseconds (on a VM, a halted
 * vCPU has to be woken by the host), and such a client pays it on every
 * request. So after answering it, the event loop keeps polling the sockets
 * without sleeping for a short window; a request that arrives within it is
 * read at once. The window restarts with each request from the same client
 * and ends when it goes quiet, so an idle daemon still sleeps.
 *
 * Requests from several clients end the window instead: then the next
 * request is usually waiting already, and polling would only take CPU
 * time the clients need.
 */
/** Time and the next turn of the event loop; tests give a fake one. */
export interface PollClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `f` at the next turn without sleeping (setImmediate). */
  nextTurn(f: () => void): void;
}

/** process.hrtime, not performance.now: node:perf_hooks costs every start a few ms to load. */
export const EVENT_LOOP_CLOCK: PollClock = {
  now: () => {
    const [s, ns] = process.hrtime();
    return s * 1e3 + ns / 1e6;
  },
  nextTurn: (f) => setImmediate(f),
};

export class PollWindow {
  private lastActivity = -Infinity;
  private lastSource: object | undefined;
  private polling = false;

  /** `windowMs` 0 turns polling off. */
  constructor(
    private readonly windowMs: number,
    private readonly clock: PollClock = EVENT_LOOP_CLOCK,
  ) {}

  /** Whether the loop is polling instead of sleeping. */
  get isPolling(): boolean {
    return this.polling;
  }

  /** Called after each batch of requests from `source` has been answered. */
  activity(source: object): void {
    if (source !== this.lastSource) {
      this.lastSource = source;
      this.lastActivity = -Infinity;
      return;
    }
    this.lastActivity = this.clock.now();
    if (!this.polling && this.windowMs > 0) {
      this.polling = true;
      this.clock.nextTurn(this.poll);
    }
  }

  // A pending setImmediate makes libuv poll with a zero timeout, so each turn
  // of the loop reads whatever arrived and comes back here without sleeping.
  private readonly poll = (): void => {
    if (this.clock.now() - this.lastActivity < this.windowMs) this.clock.nextTurn(this.poll);
    else this.polling = false;
  };
}
