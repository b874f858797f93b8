/**
 * V8 runs a fresh process's code in its interpreter until a function has
 * run often enough to be optimized: a fresh daemon needs some 5,000
 * requests before its request path runs at full speed, and answers the
 * first thousands at half that speed. The warm-up sends that many requests
 * right after the daemon starts listening, to a scratch daemon of its own
 * over a private socket, so that the code real requests take (socket
 * reads, framing, dispatch, store, replies, socket writes) has been
 * optimized for the same object shapes before real clients come. The
 * scratch daemon has its own store and no trace: the real daemon's state,
 * generation counter, trace and memory accounting never see it.
 *
 * Real clients come first: a batch goes out only after the daemon has
 * received nothing from them for QUIET_MS, so while they are busy the
 * warm-up waits (their own requests warm the code as well), and a request
 * that arrives meanwhile waits for at most one small batch.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame } from '../protocol/frame.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { MessageType } from '../wire/vocabulary.js';

export interface WarmUpHost {
  /** Counts input from real clients: a change means one is active. */
  readonly requestsReceived: number;
  /** The daemon has closed or handed over to a successor. */
  readonly stopped: boolean;
}

/** Requests sent in all (see request()), enough for V8 to optimize their path. */
export const WARM_UP_REQUESTS = 10_000;
/**
 * Requests in flight at once, alternately one and this many: clients mostly
 * send one at a time, some several, and code V8 optimized for only one of
 * the two is thrown away when the other comes. A batch takes the scratch
 * daemon well under a millisecond.
 */
const BATCH = 4;
/** Nodes the requests write and read before they remove them all. */
const SCRATCH_CHILDREN = 100;
/** A batch goes out only after this long without input from a real client. */
const QUIET_MS = 5;

let startedInThisProcess = false;

/** warmUp, unless this process has started one already (the JIT state it builds is the process's). */
export function warmUpOnce(host: WarmUpHost, accept: () => (socket: net.Socket) => void): Promise<number> {
  if (startedInThisProcess) return Promise.resolve(0);
  startedInThisProcess = true;
  return warmUp(host, accept);
}

/**
 * Sends WARM_UP_REQUESTS requests to a scratch daemon through `accept`
 * (its acceptSocket, made when the first batch is due). Resolves with the
 * number answered: all, or fewer if `host` stopped first. It never fails:
 * without it the daemon is only slower.
 */
export function warmUp(host: WarmUpHost, accept: () => (socket: net.Socket) => void): Promise<number> {
  return new Promise((resolve) => {
    let answered = 0;
    let sent = 0;
    let batches = 0;
    let seen = host.requestsReceived;
    const reader = new FrameReader();
    let client: net.Socket | undefined;
    const next = (): void => {
      if (host.stopped || sent === WARM_UP_REQUESTS) {
        client!.destroy();
      } else if (host.requestsReceived !== seen) {
        seen = host.requestsReceived;
        setTimeout(next, QUIET_MS);
      } else {
        const batch: Buffer[] = [];
        const size = (batches++ & 1) === 0 ? 1 : BATCH;
        while (batch.length < size && sent < WARM_UP_REQUESTS) batch.push(request(sent++));
        client!.write(Buffer.concat(batch));
      }
    };
    const replies = (chunk: Buffer): void => {
      answered += reader.push(chunk).length;
      if (answered === sent) next();
    };
    setTimeout(() => {
      if (host.stopped) return resolve(0);
      connectPrivately(accept(), replies).then((socket) => {
        client = socket;
        socket.once('close', () => resolve(answered));
        socket.on('error', () => socket.destroy());
        next();
      }, () => resolve(0));
    }, QUIET_MS);
  });
}

/**
 * A client socket connected to `accept`, its input going to `replies`,
 * through a socket file in a new owner-only directory, so no other process
 * can reach the scratch daemon. Node binds, listens and connects a Unix
 * socket synchronously, so the directory is gone again before this returns:
 * a daemon killed meanwhile leaves nothing behind.
 */
function connectPrivately(accept: (socket: net.Socket) => void, replies: (chunk: Buffer) => void): Promise<net.Socket> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenstored-sim-warm-up-'));
  const server = net.createServer();
  // Replies go straight from one buffer to `replies`, without the stream machinery's cost per read.
  const into = Buffer.allocUnsafe(64 * 1024);
  const onread = { buffer: into, callback: (n: number) => (replies(into.subarray(0, n)), true) };
  let client: net.Socket;
  try {
    const socketPath = path.join(dir, 'socket');
    server.listen(socketPath);
    client = net.createConnection({ path: socketPath, onread });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      server.close();
      client.destroy();
      reject(e);
    };
    server.once('error', fail);
    client.once('error', fail);
    let connected = false;
    let accepted: net.Socket | undefined;
    const ready = () => {
      if (!connected || !accepted) return;
      server.close();
      server.off('error', fail);
      client.off('error', fail);
      accept(accepted);
      resolve(client);
    };
    client.once('connect', () => {
      connected = true;
      ready();
    });
    server.once('connection', (socket: net.Socket) => {
      accepted = socket;
      ready();
    });
  });
}

/**
 * The n-th request. Rounds of WRITE (a new node), READ and DIRECTORY (of
 * the root, whose listing rarely changes, as a listing usually does not),
 * and every SCRATCH_CHILDREN rounds an RM of the nodes written, so node
 * creation is warmed as often as the rest. Request ids alternate between small and
 * large numbers (clients send both), so that V8 does not specialize the
 * frame objects for one kind.
 */
function request(n: number): Buffer {
  const round = Math.floor(n / 4);
  const child = `/warm-up/${round % SCRATCH_CHILDREN}`;
  const kind = n % 4;
  const [type, payload] = kind === 0 ? [MessageType.WRITE, `${child}\0value ${round}`]
    : kind === 1 ? [MessageType.READ, `${child}\0`]
      : kind === 2 ? [MessageType.DIRECTORY, '/\0']
        : round % SCRATCH_CHILDREN === SCRATCH_CHILDREN - 1 ? [MessageType.RM, '/warm-up\0'] : [MessageType.READ, `${child}\0`];
  return encodeFrame({ type, reqId: n % 2 === 0 ? n : 0x80000000 + n, txId: 0, payload: Buffer.from(payload, 'latin1') });
}
