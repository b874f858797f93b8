/** A bare-bones wire client for tests that need exact frames, partial sends or pipelining. */
import net from 'node:net';
import { encodeFrame, type Frame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MessageType } from '../../src/wire/vocabulary.js';

export class RawClient {
  private readonly reader = new FrameReader();
  readonly received: Frame[] = [];
  private waiters: (() => void)[] = [];
  private nextReq = 1;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.received.push(...this.reader.push(chunk));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(type: number, payload: string | Buffer, txId = 0): number {
    const reqId = this.nextReq++;
    this.socket.write(encodeFrame({ type, reqId, txId, payload: typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload }));
    return reqId;
  }

  /** Waits until a message matching `pred` has arrived; returns and removes it. */
  async take(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Sends a request and returns its reply (events stay queued in `received`). */
  async call(type: number, payload: string | Buffer, txId = 0): Promise<{ type: number; text: string; payload: Buffer }> {
    const reqId = this.send(type, payload, txId);
    const f = await this.take((m) => m.reqId === reqId && m.type !== MessageType.WATCH_EVENT);
    return { type: f.type, text: f.payload.toString('latin1'), payload: f.payload };
  }

  async event(): Promise<string> {
    const f = await this.take((m) => m.type === MessageType.WATCH_EVENT);
    return f.payload.toString('latin1');
  }

  close(): void {
    this.socket.destroy();
  }
}
