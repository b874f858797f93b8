/**
 * C xenstored's "outstanding requests" of a connection: a request counts
 * from the moment its reply, or the first watch event it caused (at any
 * connection), is queued, until every one of them has been handed to a
 * transport or dropped. C stops reading a guest while its count is at the
 * `outstanding` quota, so a guest that does not read cannot pile up work.
 */
export interface OutstandingOwner {
  outstanding: number;
  /** One of its requests stopped counting. */
  requestSettled(): void;
}

/** What one request has queued and not yet handed over. */
export class RequestCharge {
  private unsent = 0;

  constructor(private readonly owner: OutstandingOwner) {}

  /** Messages this request caused were queued. */
  add(count = 1): void {
    if (this.unsent === 0 && count > 0) this.owner.outstanding++;
    this.unsent += count;
  }

  /** One of its messages was handed over or dropped. */
  settle(): void {
    if (--this.unsent > 0) return;
    this.owner.outstanding--;
    this.owner.requestSettled();
  }
}
