/**
 * XsClient: a XenStore client over a Unix stream socket.
 *
 *   const xs = await XsClient.connect(socketPath);
 *   await xs.write('/a/b', 'hello');
 *   const events = xs.watchEvents();        // buffers from this moment on
 *   await xs.watch('/a', 'tok');
 *   for await (const ev of events) { ... }  // {path: '/a', token: 'tok'} first
 *   await xs.close();
 *
 * Requests are pipelined: each is written at once with the next req_id, and
 * its promise settles when the reply with that req_id arrives. Watch events
 * are emitted ('watch' event, and every open watchEvents() iterator) the
 * moment they are read, in arrival order, so an event the daemon queues
 * before a reply is seen before that reply's promise settles.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { MessageType, messageTypeName } from '../wire/vocabulary.js';
import { decodeString, decodeStrings, decodeUint, encodeArgs } from './codec.js';
import { XsConnectionError, XsError, XsProtocolError } from './errors.js';
import { XsNodeOps } from './node-ops.js';
import { Transaction } from './transaction.js';

/** One WATCH_EVENT: the path that changed (relative if the watch was) and the watch's token. */
export interface WatchEvent {
  path: string;
  token: string;
}

/** Events emitted by XsClient. */
export type XsClientEvents = {
  /** A WATCH_EVENT arrived. */
  watch: [path: string, token: string];
  /** The connection is gone: `error` is undefined after close(), else why it was lost. */
  close: [error: XsConnectionError | undefined];
  /** Every frame read from the daemon, before it is dispatched (for tests and tracing). */
  frame: [frame: Frame];
};

export interface ConnectOptions {
  /**
   * How long to keep retrying while the daemon's listen backlog is full
   * (connect() failing with EAGAIN; C xenstored listens with a backlog of 1).
   * Default 2000 ms.
   */
  retryMs?: number;
}

export interface TransactionOptions {
  /** How many times to run the callback again after EAGAIN (default 10). */
  retries?: number;
}

interface Pending {
  type: number;
  subject: string | undefined;
  resolve(frame: Frame): void;
  reject(error: Error): void;
}

/** A number sent as decimal text (a gfn may not fit in a double). */
type Num = number | bigint;

type Listener<K extends keyof XsClientEvents> = (...args: XsClientEvents[K]) => void;

export class XsClient extends XsNodeOps {
  readonly txId = 0;
  private readonly emitter = new EventEmitter();
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private readonly eventQueues = new Set<WatchEventQueue>();
  private lastReqId = 0;
  /** Set once the connection is unusable; the reason for rejecting new requests. */
  private closedBy: { error: XsConnectionError | undefined; message: string } | undefined;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socket: net.Socket,
    /** The socket path this client is connected to. */
    readonly socketPath: string,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    let socketError: Error | undefined;
    socket.on('error', (e) => {
      socketError = e;
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.shutdown(new XsConnectionError(`connection to ${socketPath} was lost${socketError ? `: ${socketError.message}` : ''}`, { cause: socketError }));
        resolve();
      });
    });
  }

  /** Connects to the daemon listening on `socketPath`. */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<XsClient> {
    const deadline = Date.now() + (options.retryMs ?? 2000);
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        return new XsClient(socket, socketPath);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        throw new XsConnectionError(`cannot connect to xenstored at ${socketPath}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /** True once the connection is closed or lost; every request then rejects. */
  get isClosed(): boolean {
    return this.closedBy !== undefined;
  }

  /**
   * Closes the connection. Requests still waiting for a reply reject with
   * XsConnectionError; open watchEvents() iterators end. Resolves when the
   * socket is closed.
   */
  async close(): Promise<void> {
    this.shutdown(undefined);
    this.socket.destroy();
    await this.closed;
  }

  /**
   * Sends one request as is and resolves with its reply frame (type, reqId,
   * txId, payload) — ERROR replies included, nothing is checked or decoded.
   * Rejects only when the connection is lost before the reply. The payload
   * is not size-checked (a daemon drops a connection sending > 4096 bytes).
   * `subject` (e.g. the path) is only used in error messages.
   */
  request(type: number, payload: Buffer, txId = 0, subject?: string): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      if (this.closedBy) {
        reject(new XsConnectionError(`${this.closedBy.message}; cannot send ${describe(type, subject)}`, { cause: this.closedBy.error }));
        return;
      }
      const reqId = this.nextReqId();
      this.pending.set(reqId, { type, subject, resolve, reject });
      this.socket.write(encodeFrame({ type, reqId, txId, payload }));
    });
  }

  /** Next req_id: increasing, wrapping after 2^32-1, never 0 (events use 0) nor one still pending. */
  private nextReqId(): number {
    do {
      this.lastReqId = this.lastReqId >= 0xffffffff ? 1 : this.lastReqId + 1;
    } while (this.pending.has(this.lastReqId));
    return this.lastReqId;
  }

  // ---------------------------------------------------------------------
  // Events: 'watch', 'close', 'frame' (see XsClientEvents)

  on<K extends keyof XsClientEvents>(event: K, listener: Listener<K>): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof XsClientEvents>(event: K, listener: Listener<K>): this {
    this.emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof XsClientEvents>(event: K, listener: Listener<K>): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  private emit<K extends keyof XsClientEvents>(event: K, ...args: XsClientEvents[K]): void {
    this.emitter.emit(event, ...args);
  }

  // ---------------------------------------------------------------------
  // Incoming data

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      this.fail(new XsProtocolError(`cannot frame the daemon's output: ${(e as Error).message}`));
      return;
    }
    for (const frame of frames) {
      if (this.closedBy) return;
      this.emit('frame', frame);
      if (frame.type === MessageType.WATCH_EVENT) {
        const [path = '', token = ''] = decodeStrings(frame.payload);
        this.emit('watch', path, token);
        for (const queue of this.eventQueues) queue.push({ path, token });
        continue;
      }
      const waiting = this.pending.get(frame.reqId);
      if (!waiting) {
        this.fail(new XsProtocolError(`reply of type ${messageTypeName(frame.type)} with req_id ${frame.reqId}, which matches no request in flight`));
        return;
      }
      this.pending.delete(frame.reqId);
      waiting.resolve(frame);
    }
  }

  /** Tears the connection down because the daemon's output makes no sense. */
  private fail(error: XsProtocolError): void {
    this.shutdown(new XsConnectionError(`connection to ${this.socketPath} abandoned: ${error.message}`, { cause: error }));
    this.socket.destroy();
  }

  /** Marks the client closed (once); rejects pending requests and ends iterators. */
  private shutdown(error: XsConnectionError | undefined): void {
    if (this.closedBy) return;
    const message = error ? error.message : `connection to ${this.socketPath} was closed by the client`;
    this.closedBy = { error, message };
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.reject(new XsConnectionError(`${message}; no reply to ${describe(p.type, p.subject)}`, { cause: error }));
    }
    for (const queue of this.eventQueues) queue.end(error);
    this.eventQueues.clear();
    this.emit('close', error);
  }

  // ---------------------------------------------------------------------
  // Watches

  /** WATCH: registers a watch; the daemon sends an initial event right after the reply. */
  async watch(path: string, token: string, depth?: number): Promise<void> {
    const args = depth === undefined ? [path, token] : [path, token, String(depth)];
    await this.call(MessageType.WATCH, encodeArgs(...args), path);
  }

  /** UNWATCH: removes the watch with this path and token. */
  async unwatch(path: string, token: string): Promise<void> {
    await this.call(MessageType.UNWATCH, encodeArgs(path, token), path);
  }

  /** RESET_WATCHES: drops every watch and transaction of this connection. */
  async resetWatches(): Promise<void> {
    await this.call(MessageType.RESET_WATCHES, encodeArgs(''));
  }

  /**
   * An async iterator over watch events that arrive from now on (events
   * received before this call are not replayed, so create it before the
   * WATCH whose initial event you want). Events are buffered until read.
   * It ends when the client is closed, and throws the XsConnectionError
   * when the connection is lost; `break` (return()) detaches it.
   */
  watchEvents(): AsyncIterableIterator<WatchEvent> {
    const queue = new WatchEventQueue(() => this.eventQueues.delete(queue));
    if (this.closedBy) queue.end(this.closedBy.error);
    else this.eventQueues.add(queue);
    return queue;
  }

  // ---------------------------------------------------------------------
  // Transactions

  /** TRANSACTION_START: opens a transaction. */
  async startTransaction(): Promise<Transaction> {
    const reply = await this.call(MessageType.TRANSACTION_START, encodeArgs(''));
    return new Transaction(this, decodeUint(reply, 'TRANSACTION_START reply'));
  }

  /**
   * Runs `fn` in a new transaction and commits it. If the commit (or `fn`)
   * fails with EAGAIN, the whole callback runs again in a fresh transaction,
   * up to `retries` more times. Any other error aborts the transaction and
   * is rethrown. `attempt` counts from 0.
   */
  async transaction<T>(fn: (tx: Transaction, attempt: number) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const retries = options.retries ?? 10;
    for (let attempt = 0; ; attempt++) {
      const tx = await this.startTransaction();
      let result: T;
      try {
        result = await fn(tx, attempt);
      } catch (e) {
        await tx.abort().catch(() => undefined);
        if (e instanceof XsError && e.code === 'EAGAIN' && attempt < retries) continue;
        throw e;
      }
      try {
        await tx.commit();
        return result;
      } catch (e) {
        if (e instanceof XsError && e.code === 'EAGAIN' && attempt < retries) continue;
        throw e;
      }
    }
  }

  // ---------------------------------------------------------------------
  // Domains

  /** INTRODUCE: tells the daemon about domain `domid`'s ring page and event channel. */
  async introduce(domid: number, gfn: Num, evtchn: number): Promise<void> {
    await this.call(MessageType.INTRODUCE, encodeArgs(String(domid), String(gfn), String(evtchn)), String(domid));
  }

  /** RELEASE: the daemon forgets domain `domid` (as if it had died). */
  async release(domid: number): Promise<void> {
    await this.call(MessageType.RELEASE, encodeArgs(String(domid)), String(domid));
  }

  /** RESUME: re-arms @releaseDomain for a domain that was reported shut down. */
  async resume(domid: number): Promise<void> {
    await this.call(MessageType.RESUME, encodeArgs(String(domid)), String(domid));
  }

  /** IS_DOMAIN_INTRODUCED. */
  async isDomainIntroduced(domid: number): Promise<boolean> {
    const reply = decodeString(await this.call(MessageType.IS_DOMAIN_INTRODUCED, encodeArgs(String(domid)), String(domid)));
    if (reply !== 'T' && reply !== 'F') throw new XsProtocolError(`IS_DOMAIN_INTRODUCED ${domid}: expected T or F, got ${JSON.stringify(reply)}`);
    return reply === 'T';
  }

  /** GET_DOMAIN_PATH: `/local/domain/<domid>`. */
  async getDomainPath(domid: number): Promise<string> {
    return decodeString(await this.call(MessageType.GET_DOMAIN_PATH, encodeArgs(String(domid)), String(domid)));
  }

  /** SET_TARGET: domain `domid` gets `target`'s permissions (device-model stub domains). */
  async setTarget(domid: number, target: number): Promise<void> {
    await this.call(MessageType.SET_TARGET, encodeArgs(String(domid), String(target)), String(domid));
  }

  /** GET_FEATURE: this connection's feature bits, or domain `domid`'s. */
  async getFeature(domid?: number): Promise<number> {
    const payload = domid === undefined ? Buffer.alloc(0) : encodeArgs(String(domid));
    return decodeUint(await this.call(MessageType.GET_FEATURE, payload, domid === undefined ? undefined : String(domid)), 'GET_FEATURE reply');
  }

  /** SET_FEATURE: sets domain `domid`'s feature bits (before INTRODUCE). */
  async setFeature(domid: number, features: number): Promise<void> {
    await this.call(MessageType.SET_FEATURE, encodeArgs(String(domid), String(features)), String(domid));
  }

  /** GET_QUOTA: the quota names; a global value; or domain `domid`'s value. */
  getQuota(): Promise<string[]>;
  getQuota(name: string): Promise<number>;
  getQuota(domid: number, name: string): Promise<number>;
  async getQuota(...args: [] | [string] | [number, string]): Promise<string[] | number> {
    const strings = args.map(String);
    const reply = await this.call(MessageType.GET_QUOTA, strings.length === 0 ? Buffer.alloc(0) : encodeArgs(...strings), strings.join(' ') || undefined);
    if (args.length === 0) return decodeString(reply).split(' ').filter((n) => n !== '');
    return decodeUint(reply, 'GET_QUOTA reply');
  }

  /** SET_QUOTA: sets a global quota value, or domain `domid`'s. */
  setQuota(name: string, value: number): Promise<void>;
  setQuota(domid: number, name: string, value: number): Promise<void>;
  async setQuota(...args: [string, number] | [number, string, number]): Promise<void> {
    const strings = args.map(String);
    await this.call(MessageType.SET_QUOTA, encodeArgs(...strings), strings.slice(0, -1).join(' '));
  }

  /** CONTROL: a daemon command with its arguments (e.g. 'print', 'hi'); the raw reply. */
  async control(command: string, ...args: string[]): Promise<Buffer> {
    return this.call(MessageType.CONTROL, encodeArgs(command, ...args), command);
  }
}

function describe(type: number, subject: string | undefined): string {
  return `${messageTypeName(type)}${subject === undefined ? '' : ` ${JSON.stringify(subject)}`}`;
}

/** The buffer behind one watchEvents() iterator. */
class WatchEventQueue implements AsyncIterableIterator<WatchEvent> {
  private readonly buffered: WatchEvent[] = [];
  private readonly waiting: Array<{ resolve(r: IteratorResult<WatchEvent>): void; reject(e: Error): void }> = [];
  private done = false;
  private error: Error | undefined;

  constructor(private readonly detach: () => void) {}

  push(event: WatchEvent): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve({ value: event, done: false });
    else this.buffered.push(event);
  }

  /** No more events: buffered ones are still delivered, then done (or `error`). */
  end(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    for (const w of this.waiting.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.buffered.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.done) {
      const error = this.error;
      this.error = undefined; // report a lost connection once, then just end
      return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<WatchEvent>> {
    this.detach();
    this.buffered.length = 0;
    this.error = undefined;
    this.end(undefined);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchEvent> {
    return this;
  }
}
