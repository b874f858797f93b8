/**
 * One client's byte stream: frames in, replies and watch events out. It
 * does not own a socket: bytes arrive through `receive`, and leave through
 * whatever `Transport` is attached (a Unix socket, or nothing while a
 * guest domain has no client connected).
 */
import type { Requester } from '../store/requester.js';
import { encodeFrame, type Frame } from './frame.js';
import { FrameReader } from './frame-reader.js';
import { HEADER_SIZE, MessageType, PAYLOAD_MAX } from '../wire/vocabulary.js';

export interface Transport {
  /** Hands bytes to the peer; false when they had to be buffered. */
  write(bytes: Buffer): boolean;
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

interface Queued {
  bytes: Buffer;
  /** path NUL token, for events that may be dropped as duplicates. */
  eventKey?: string;
}

/**
 * The last watch event encoded. One change fires the same path and token
 * at many connections (watchers that share a token), and queued bytes are
 * never modified, so they can all send the same Buffer.
 */
let lastEvent: { path: string; token: string; bytes: Buffer } | undefined;

function encodedEvent(path: string, token: string): Buffer {
  if (lastEvent?.path !== path || lastEvent.token !== token) {
    const payload = Buffer.from(`${path}\0${token}\0`, 'latin1');
    lastEvent = { path, token, bytes: encodeFrame({ type: MessageType.WATCH_EVENT, reqId: 0, txId: 0, payload }) };
  }
  return lastEvent.bytes;
}

/** Stop reading requests while this much output waits for a slow reader. */
const OUTPUT_HIGH_WATER = 1 << 20;

export class Connection {
  readonly reader = new FrameReader();
  private queue: Queued[] = [];
  private queuedBytes = 0;
  /** Chunks written since the transport last had nothing buffered. */
  private inFlight: Buffer[] = [];
  private paused = false;
  transport: Transport | undefined;

  constructor(
    readonly client: Requester,
    /** Most bytes of watch events kept for a client that does not read. */
    private readonly eventQueueLimit: number,
  ) {}

  get hasQueuedOutput(): boolean {
    return this.queue.length > 0;
  }

  queueReply(frame: Frame): void {
    this.push({ bytes: encodeFrame(frame) });
  }

  /**
   * Queues a watch event unless it is too long to send, an identical one
   * (same path and token) is still queued — special "@" events excepted —
   * or the client's backlog is already at its limit.
   */
  queueEvent(path: string, token: string): void {
    const bytes = encodedEvent(path, token);
    if (bytes.length > HEADER_SIZE + PAYLOAD_MAX) return; // C silently drops what no client could take
    const eventKey = path.charCodeAt(0) === 0x40 ? undefined : `${path}\0${token}`;
    if (eventKey !== undefined && this.queue.some((q) => q.eventKey === eventKey)) return;
    if (this.queuedBytes + bytes.length > this.eventQueueLimit) return;
    this.push({ bytes, eventKey });
  }

  private push(item: Queued): void {
    this.queue.push(item);
    this.queuedBytes += item.bytes.length;
  }

  /** Sends everything queued, if a transport is attached. */
  flush(): void {
    const transport = this.transport;
    if (!transport || this.queue.length === 0) return;
    const bytes = this.queue.length === 1 ? this.queue[0]!.bytes : Buffer.concat(this.queue.map((q) => q.bytes));
    this.queue = [];
    this.queuedBytes = 0;
    if (transport.writableLength === 0) this.inFlight = [];
    this.inFlight.push(bytes);
    transport.write(bytes);
    if (transport.writableLength > OUTPUT_HIGH_WATER && !this.paused) {
      this.paused = true;
      transport.pause();
    }
  }

  /** The transport has handed all buffered bytes to the kernel. */
  drained(): void {
    this.inFlight = [];
    if (this.paused) {
      this.paused = false;
      this.transport?.resume();
    }
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
    return { partial, messages: [...messages, ...this.queue.map((q) => q.bytes)] };
  }

  /**
   * Input not yet answered, for a state dump: what the frame reader holds,
   * plus (when the socket itself will not come along) what Node read from
   * the kernel but has not delivered.
   */
  unprocessedInput(includeUndelivered = true): Buffer {
    const undelivered = includeUndelivered ? this.transport?.undeliveredInput() : undefined;
    return undelivered?.length ? Buffer.concat([this.reader.unconsumed(), undelivered]) : this.reader.unconsumed();
  }

  /** Puts back output saved by a state dump: a partial message first, then whole ones. */
  restoreOutput(partial: Buffer, messages: Buffer[]): void {
    if (partial.length > 0) this.push({ bytes: partial });
    for (const bytes of messages) {
      const isEvent = bytes.readUInt32LE(0) === MessageType.WATCH_EVENT;
      const payload = bytes.subarray(HEADER_SIZE);
      const path = payload.toString('latin1', 0, Math.max(0, payload.indexOf(0)));
      const eventKey = isEvent && path.charCodeAt(0) !== 0x40
        ? payload.toString('latin1', 0, Math.max(0, payload.length - 1)) : undefined;
      this.push({ bytes, eventKey });
    }
  }

  /** Forgets all queued output and partial input (INTRODUCE resets a ring). */
  reset(): void {
    this.queue = [];
    this.queuedBytes = 0;
    this.reader.reset();
  }
}
