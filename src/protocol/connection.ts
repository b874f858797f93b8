/**
 * One client's byte stream: frames in, replies and watch events out. It
 * does not own a socket: bytes arrive through `receive`, and leave through
 * whatever `Transport` is attached (a Unix socket, or nothing while a
 * guest domain has no client connected).
 */
import type { EventBatch } from '../store/events.js';
import type { Requester } from '../store/requester.js';
import { encodeFrame, type Frame } from './frame.js';
import { FrameReader } from './frame-reader.js';
import { HEADER_SIZE, MessageType, PAYLOAD_MAX } from '../wire/vocabulary.js';
import { OutputQueue } from './output-queue.js';
import { encodedEvent, eventSize } from './event-frame.js';
import type { OutstandingOwner, RequestCharge } from './outstanding.js';

export interface Transport {
  /**
   * Hands bytes to the peer. What cannot be sent at once is buffered (see
   * writableLength), and `sent` runs once it has been.
   */
  write(bytes: Buffer, sent: () => void): void;
  /** Bytes handed over but not yet sent on (for backpressure). */
  readonly writableLength: number;
  /** Of those, the ones the kernel has not taken, exactly (for a state dump). */
  unsentBytes(): number;
  /** Bytes received from the kernel but not yet delivered (for a state dump). */
  undeliveredInput(): Buffer;
  /** Stops and restarts reading requests, leaving unread bytes in the kernel. */
  pause(): void;
  resume(): void;
  close(): void;
}

/**
 * Most bytes handed to a transport in one write. What the kernel does not
 * take stays with the transport, so this bounds what a slow reader's
 * transport holds; the rest waits in the queue, where events can still be
 * dropped as duplicates or on timeout, as C does with its out_list.
 */
const WRITE_BATCH = 16 * 1024;

/**
 * Batches written per turn of the event loop. A reader as fast as the
 * daemon would otherwise keep it writing one connection's backlog (a big
 * watch fan-out: 16 KB is 400 events to build) while the others wait.
 */
const BATCHES_PER_TURN = 1;

export class Connection implements OutstandingOwner {
  readonly reader = new FrameReader();
  private readonly output = new OutputQueue();
  /** Requests received and not yet handled, oldest first. */
  private requests: Frame[] = [];
  private nextRequest = 0;
  /** Chunks written since the transport last had nothing buffered. */
  private inFlight: Buffer[] = [];
  private expiryTimer: NodeJS.Timeout | undefined;
  private readingStopped = false;
  private flushPending = false;
  /** Requests of this connection with messages not yet handed over (C's nboutstanding). */
  outstanding = 0;
  transport: Transport | undefined;
  /** Called when a request stops counting as outstanding. */
  onRequestSettled: () => void = () => {};

  constructor(
    readonly client: Requester,
    /** Most bytes of watch events kept for a client that does not read. */
    private readonly eventQueueLimit: number,
    /** Events still queued this long (ms) are dropped; 0 keeps them. */
    private readonly eventTimeoutMs = 0,
    /** Charge queued output to the client's domain (guests). */
    readonly chargesOutput = false,
  ) {}

  /** Bytes waiting for this client: queued, and held by its transport. */
  /** Bytes of output ever queued for this connection (see OutputQueue.queuedTotal). */
  get outputProduced(): number {
    return this.output.queuedTotal;
  }

  get outputBacklog(): number {
    return this.output.byteLength + (this.transport?.writableLength ?? 0);
  }

  requestSettled(): void {
    this.onRequestSettled();
  }

  // --- requests ------------------------------------------------------------

  /** Keeps received requests until the daemon handles them. */
  queueRequests(frames: Frame[]): void {
    for (const frame of frames) this.requests.push(frame);
  }

  get hasRequests(): boolean {
    return this.nextRequest < this.requests.length;
  }

  /** Leaves further requests in the kernel until `startReading`. */
  stopReading(): void {
    if (this.readingStopped || !this.transport) return;
    this.readingStopped = true;
    this.transport.pause();
  }

  startReading(): void {
    if (!this.readingStopped) return;
    this.readingStopped = false;
    this.transport?.resume();
  }

  /** The oldest request not yet handled. */
  takeRequest(): Frame | undefined {
    const frame = this.requests[this.nextRequest];
    if (frame === undefined) return undefined;
    this.requests[this.nextRequest++] = undefined as unknown as Frame;
    if (this.nextRequest === this.requests.length) {
      this.requests = [];
      this.nextRequest = 0;
    }
    return frame;
  }

  // --- output --------------------------------------------------------------

  queueReply(frame: Frame, charge?: RequestCharge): void {
    this.output.push({ bytes: encodeFrame(frame), charge });
    this.outputChanged();
  }

  /**
   * Queues a watch event unless it is too long to send, an identical one
   * (same path and token) is still queued — special "@" events excepted —
   * or the client's backlog is already at its limit.
   */
  queueEvent(path: string, token: string, charge?: RequestCharge): void {
    // Judged before encoding: a fan-out past the backlog limit costs no Buffers.
    const size = eventSize(path, token);
    if (size > HEADER_SIZE + PAYLOAD_MAX) return; // C silently drops what no client could take
    const special = path.charCodeAt(0) === 0x40;
    if (!special && this.output.hasEvent(path, token)) return;
    if (this.output.byteLength + size > this.eventQueueLimit) return;
    const expires = this.eventTimeoutMs > 0 ? Date.now() + this.eventTimeoutMs : undefined;
    this.output.push({ bytes: encodedEvent(path, token), event: special ? undefined : { path, token }, charge, expires });
    this.outputChanged();
  }

  /** Keeps the domain's charge for queued output equal to the queue. */
  private outputChanged(): void {
    if (this.chargesOutput) this.client.domain!.outputMemory = this.output.byteLength;
  }

  /**
   * Queues a commit's events for this client as one segment: the same
   * events as queueEvent one by one would keep, built only as the output
   * drains to them.
   */
  queueEventBatch(batch: EventBatch, charge?: RequestCharge): void {
    const expires = this.eventTimeoutMs > 0 ? Date.now() + this.eventTimeoutMs : undefined;
    this.output.pushEvents(batch, this.eventQueueLimit, charge, expires);
    this.outputChanged();
  }

  /**
   * Hands queued messages to the transport, a batch at a time, while it
   * has nothing buffered (the kernel took everything so far).
   */
  flush(): void {
    const transport = this.transport;
    if (!transport) return;
    for (let budget = BATCHES_PER_TURN; this.output.length > 0 && transport.writableLength === 0; budget--) {
      if (budget === 0) {
        this.flushNextTurn();
        break;
      }
      const batch: Buffer[] = [];
      let size = 0;
      while (size < WRITE_BATCH) {
        const item = this.output.shift();
        if (!item) break;
        batch.push(item.bytes);
        size += item.bytes.length;
        item.charge?.settle();
      }
      const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch, size);
      this.inFlight = [bytes];
      transport.write(bytes, this.sent);
    }
    this.outputChanged();
    if (this.output.length > 0) this.armExpiry();
  }

  private flushNextTurn(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    setImmediate(() => {
      this.flushPending = false;
      this.flush();
      this.onDrained();
    });
  }

  /** Called when output the transport had to buffer has been sent on. */
  onDrained: () => void = () => {};

  private readonly sent = (): void => {
    if (this.transport?.writableLength !== 0) return;
    this.inFlight = [];
    this.flush();
    this.onDrained();
  };

  /** Drops events queued longer than the timeout (C's watch-event timeout), then waits for the next. */
  private armExpiry(): void {
    if (this.eventTimeoutMs === 0 || this.expiryTimer) return;
    const first = this.output.firstExpiring();
    if (!first) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      const now = Date.now();
      this.output.dropWhere((q) => q.expires !== undefined && q.expires <= now);
      this.outputChanged();
      this.armExpiry();
    }, Math.max(0, first.expires! - Date.now()));
    this.expiryTimer.unref();
  }

/**
   * Output the peer has not received, for a state dump: the rest of a
   * message cut short by a full socket buffer, then whole messages.
   */
  unsentOutput(includeInFlight = true): { partial: Buffer; messages: Buffer[] } {
    const pending = includeInFlight ? this.transport?.unsentBytes() ?? 0 : 0;
    const messages: Buffer[] = [];
    let partial = Buffer.alloc(0);
    if (pending > 0) {
      const flat = Buffer.concat(this.inFlight);
      const sent = flat.length - pending;
      for (let at = 0; at < flat.length; ) {
        const end = at + HEADER_SIZE + flat.readUInt32LE(at + 12);
        if (end > sent) {
          if (at < sent) partial = flat.subarray(sent, end);
          else messages.push(flat.subarray(at, end));
        }
        at = end;
      }
    }
    return { partial, messages: [...messages, ...this.output.peekAll()] };
  }

  /**
   * Input not yet answered, for a state dump: requests received but not
   * handled, what the frame reader holds, plus (when the socket itself will
   * not come along) what Node read from the kernel but has not delivered.
   */
  unprocessedInput(includeUndelivered = true): Buffer {
    const parts = this.requests.slice(this.nextRequest).map(encodeFrame);
    parts.push(this.reader.unconsumed());
    const undelivered = includeUndelivered ? this.transport?.undeliveredInput() : undefined;
    if (undelivered?.length) parts.push(undelivered);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Puts back output saved by a state dump: a partial message first, then whole ones. */
  restoreOutput(partial: Buffer, messages: Buffer[]): void {
    if (partial.length > 0) this.output.push({ bytes: partial });
    for (const bytes of messages) {
      const isEvent = bytes.readUInt32LE(0) === MessageType.WATCH_EVENT;
      const payload = bytes.subarray(HEADER_SIZE);
      const nul = Math.max(0, payload.indexOf(0));
      const path = payload.toString('latin1', 0, nul);
      const token = payload.toString('latin1', nul + 1, Math.max(nul + 1, payload.length - 1));
      this.output.push({ bytes, event: isEvent && path.charCodeAt(0) !== 0x40 ? { path, token } : undefined });
    }
    this.outputChanged();
  }

  /**
   * Forgets all queued output, requests not yet handled and partial input
   * (INTRODUCE resets a ring; a closed connection lets go of what it held).
   */
  reset(): void {
    this.output.dropWhere(() => true);
    this.outputChanged();
    this.requests = [];
    this.nextRequest = 0;
    this.reader.reset();
    this.startReading();
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }
}
