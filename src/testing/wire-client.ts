/**
 * WireClient: a client that speaks frames, not operations, for tests that
 * need what XsClient deliberately cannot do: send raw or half frames,
 * pipeline requests, read replies and watch events exactly as they arrive,
 * or not read at all. Framing is the daemon's own codec (encodeFrame,
 * FrameReader), so there is no second copy of the wire format.
 */
import net from 'node:net';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { MessageType, messageTypeName } from '../wire/vocabulary.js';

export type { Frame } from '../protocol/frame.js';

/** A reply with its payload also as latin1 text. */
export interface WireReply extends Frame {
  text: string;
}

export interface WireClientOptions {
  /** Name used in error messages (default: the socket path). */
  name?: string;
  /** Largest payload accepted before the stream counts as unframeable (default: the protocol's 4096). */
  maxPayload?: number;
  /** Do not read from the socket until `resume()` (a client that does not read its replies). */
  paused?: boolean;
  /** Every byte received is appended here, in order (pass the same array to a reconnect to keep one transcript). */
  transcript?: Buffer[];
  /** Every frame goes here as it arrives instead of into `received`. */
  onFrame?: (frame: Frame) => void;
  /** How long `take`/`reply`/`call` wait by default (ms, default 5000). */
  timeoutMs?: number;
}

export class WireClient {
  /** Frames received and not yet taken, in arrival order (unless `onFrame` was given). */
  readonly received: Frame[] = [];
  /** Set once the stream from the daemon could not be framed; the connection is then closed. */
  framingError: Error | undefined;
  closed = false;
  /** Request bytes handed to the socket so far (`bytesSent - socket.writableLength` have reached the kernel). */
  bytesSent = 0;
  readonly name: string;
  private readonly reader: FrameReader;
  private readonly timeoutMs: number;
  private waiters: (() => void)[] = [];
  private nextReq = 1;

  private constructor(readonly socket: net.Socket, options: WireClientOptions & { name: string }) {
    this.name = options.name;
    this.reader = new FrameReader(options.maxPayload);
    this.timeoutMs = options.timeoutMs ?? 5_000;
    if (options.paused) socket.pause();
    socket.on('data', (chunk: Buffer) => {
      options.transcript?.push(chunk);
      if (this.framingError) return;
      let frames: Frame[];
      try {
        frames = this.reader.push(chunk);
      } catch (e) {
        this.framingError = e as Error;
        socket.destroy();
        return;
      }
      if (options.onFrame) frames.forEach(options.onFrame);
      else this.received.push(...frames);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    // A reset or broken pipe ends in 'close', which is what callers look at.
    socket.on('error', () => {});
  }

  static connect(socketPath: string, options: WireClientOptions = {}): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath, () => {
        socket.off('error', reject);
        resolve(new WireClient(socket, { ...options, name: options.name ?? socketPath }));
      });
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((f) => f());
  }

  /** Encodes a request with the next request id, without sending it (to send in parts or in a batch). */
  frame(type: number, payload: string | Buffer, txId = 0): { reqId: number; bytes: Buffer } {
    const reqId = this.nextReq++;
    const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
    return { reqId, bytes: encodeFrame({ type, reqId, txId, payload: body }) };
  }

  /** Writes bytes as they are: a whole frame, part of one, several, or garbage. */
  sendRaw(bytes: Buffer): void {
    this.bytesSent += bytes.length;
    this.socket.write(bytes);
  }

  /** Sends a request; returns its request id. */
  send(type: number, payload: string | Buffer, txId = 0): number {
    const { reqId, bytes } = this.frame(type, payload, txId);
    this.sendRaw(bytes);
    return reqId;
  }

  /** Waits until a frame matching `pred` has arrived; removes and returns it. Rejects naming `what` on close or timeout. */
  async take(pred: (f: Frame) => boolean, timeoutMs = this.timeoutMs, what = 'a message'): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (this.framingError) throw new Error(`${this.name}: unframeable reply stream (${this.framingError.message}) while waiting for ${what}`);
      if (this.closed) throw new Error(`${this.name}: connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The reply to request `reqId` (watch events stay in `received`). */
  async reply(reqId: number, what = `the reply to request ${reqId}`, timeoutMs = this.timeoutMs): Promise<WireReply> {
    const f = await this.take((m) => m.reqId === reqId && m.type !== MessageType.WATCH_EVENT, timeoutMs, what);
    return { ...f, text: f.payload.toString('latin1') };
  }

  /** Sends a request and returns its reply. */
  call(type: number, payload: string | Buffer, txId = 0, timeoutMs = this.timeoutMs): Promise<WireReply> {
    const reqId = this.send(type, payload, txId);
    const shown = typeof payload === 'string' ? payload : payload.toString('latin1');
    return this.reply(reqId, `the reply to ${messageTypeName(type)} ${JSON.stringify(shown)}`, timeoutMs);
  }

  /** The next watch event's payload (`path\0token\0`). */
  async event(timeoutMs = this.timeoutMs): Promise<string> {
    const f = await this.take((m) => m.type === MessageType.WATCH_EVENT, timeoutMs, 'a watch event');
    return f.payload.toString('latin1');
  }

  /** Starts reading (after `paused`). */
  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}
