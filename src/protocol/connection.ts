/**
 * One client's byte stream: frames in, replies and watch events out. It
 * does not own a socket: bytes arrive through `receive`, and leave through
 * whatever `Transport` is attached (a Unix socket, or nothing while a
 * guest domain has no client connected).
 */
import type { Client } from '../store/client.js';
import { encodeFrame, type Frame } from './frame.js';
import { FrameReader } from './frame-reader.js';
import { MessageType } from './wire.js';

export interface Transport {
  /** Hands bytes to the peer; false when they had to be buffered. */
  write(bytes: Buffer): boolean;
  /** Bytes handed over but not yet taken by the kernel. */
  readonly writableLength: number;
  pause(): void;
  resume(): void;
  close(): void;
}

interface Queued {
  bytes: Buffer;
  /** path NUL token, for events that may be dropped as duplicates. */
  eventKey?: string;
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
    readonly client: Client,
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
   * Queues a watch event unless an identical one (same path and token) is
   * still queued — special "@" events excepted — or the client's backlog is
   * already at its limit.
   */
  queueEvent(path: string, token: string): void {
    const payload = Buffer.from(`${path}\0${token}\0`, 'latin1');
    const eventKey = path.charCodeAt(0) === 0x40 ? undefined : `${path}\0${token}`;
    if (eventKey !== undefined && this.queue.some((q) => q.eventKey === eventKey)) return;
    const bytes = encodeFrame({ type: MessageType.WATCH_EVENT, reqId: 0, txId: 0, payload });
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

  /** Output not yet taken by the kernel, oldest first (for a state dump). */
  unsentOutput(): { partial: Buffer; queued: Buffer[] } {
    const pending = this.transport?.writableLength ?? 0;
    const flat = pending > 0 ? Buffer.concat(this.inFlight) : Buffer.alloc(0);
    return { partial: flat.subarray(flat.length - pending), queued: this.queue.map((q) => q.bytes) };
  }

  /** Forgets all queued output and partial input (INTRODUCE resets a ring). */
  reset(): void {
    this.queue = [];
    this.queuedBytes = 0;
    this.reader.reset();
  }
}
