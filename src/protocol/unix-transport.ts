/**
 * Plugs a Unix socket into a Connection: bytes in, bytes out, close. It
 * also answers two questions a live update asks, which need a look at
 * Node's internals: which bytes the kernel has not taken yet, and which
 * bytes were read from the kernel but not yet delivered.
 */
import fs from 'node:fs';
import net from 'node:net';
import { HEADER_SIZE, PAYLOAD_MAX } from '../wire/vocabulary.js';
import type { Transport } from './connection.js';

export interface SocketEvents {
  data(chunk: Buffer): void;
  closed(): void;
}

/** The parts of net.Socket's internals a live update needs (Node 20). */
interface SocketInternals {
  _bytesDispatched?: number;
  readableBuffer?: Iterable<Buffer>;
  _handle?: {
    fd?: number;
    writeQueueSize?: number;
    reading?: boolean;
    readStart?: () => number;
    readStop?: () => number;
    useUserBuffer?: (buffer: Buffer) => void;
  } | null;
}

function internals(socket: net.Socket): SocketInternals {
  return socket as unknown as SocketInternals;
}

/**
 * Stops pulling bytes from the kernel (not just 'data' events, which is all
 * `pause()` does): what the peer sends stays in the kernel until resumed.
 */
export function stopReading(socket: net.Socket): void {
  socket.pause();
  const handle = internals(socket)._handle;
  // Leave `handle.reading` set: Node restarts reading whenever it sees it clear.
  if (handle?.reading) handle.readStop?.();
}

export function resumeReading(socket: net.Socket): void {
  const handle = internals(socket)._handle;
  if (handle?.reading) handle.readStart?.();
  socket.resume();
}

/**
 * Bytes written but not yet taken by the kernel. `writableLength` is not
 * it: it counts a whole chunk handed to libuv even when part of it is gone.
 */
export function unsentBytes(socket: net.Socket): number {
  const s = internals(socket);
  const buffered = socket.bytesWritten - (s._bytesDispatched ?? socket.bytesWritten);
  return buffered + (s._handle?.writeQueueSize ?? 0);
}

/** Bytes Node read from the kernel but has not delivered (the socket was paused). */
export function undeliveredInput(socket: net.Socket): Buffer {
  return Buffer.concat([...(internals(socket).readableBuffer ?? [])]);
}

/**
 * Writes straight to the socket's descriptor while nothing is queued in
 * Node: one write(2), skipping the Writable stream (about 1 µs a reply).
 * What the kernel does not take then goes through socket.write, which
 * queues it in order, waits for room and reports errors as usual; `sent`
 * runs once it has all been handed to the kernel. libuv keeps the
 * descriptor non-blocking, so a client that does not read can never stall
 * the daemon here.
 */
function writeDirect(socket: net.Socket, bytes: Buffer, sent: () => void): void {
  const fd = internals(socket)._handle?.fd;
  let written = 0;
  if (socket.writableLength === 0 && fd !== undefined && fd >= 0) {
    try {
      written = fs.writeSync(fd, bytes);
    } catch {
      // EAGAIN (socket buffer full) or a dead peer: socket.write queues or fails as it should.
    }
  }
  if (written === bytes.length) return;
  socket.write(written === 0 ? bytes : bytes.subarray(written), (err) => {
    if (!err) sent();
  });
}

export function socketTransport(socket: net.Socket): Transport {
  return {
    write: (bytes, sent) => writeDirect(socket, bytes, sent),
    get writableLength() {
      return socket.writableLength;
    },
    unsentBytes: () => unsentBytes(socket),
    undeliveredInput: () => undeliveredInput(socket),
    pause: () => stopReading(socket),
    resume: () => resumeReading(socket),
    close: () => socket.destroy(),
  };
}

/**
 * Node's slots behind the socket option `onread` (Node 20 names them
 * kBuffer, kBufferCb, kBufferGen). Sockets a server accepts cannot be given
 * that option, so it is set on them through these slots: reads then land in
 * one shared buffer and go straight to a callback, with no Buffer per read
 * and no stream machinery (about 2.5 µs less per round trip). Without the
 * slots (another Node), sockets use 'data' events.
 */
const onreadSlots = (() => {
  const byName = new Map(Object.getOwnPropertySymbols(new net.Socket()).map((s) => [s.description, s]));
  const [buffer, callback, generator] = ['kBuffer', 'kBufferCb', 'kBufferGen'].map((n) => byName.get(n));
  return buffer && callback && generator ? { buffer, callback, generator } : undefined;
})();

/**
 * Every socket reads into this; the frame reader copies what it keeps
 * before the next read. One maximal frame at most: a read that shows an
 * oversized header cannot have taken the whole of that request, so when
 * the connection is dropped at once (as C drops it, after the header) the
 * rest is still in the kernel, and the kernel resets the connection
 * (the client sees ECONNRESET, as with C) instead of ending it cleanly.
 */
const readBuffer = Buffer.allocUnsafe(HEADER_SIZE + PAYLOAD_MAX);

function readStraightInto(socket: net.Socket, deliver: (chunk: Buffer) => void): boolean {
  const handle = internals(socket)._handle;
  if (!onreadSlots || !handle?.useUserBuffer) return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[onreadSlots.buffer] = readBuffer;
  slots[onreadSlots.generator] = null;
  slots[onreadSlots.callback] = (n: number, buffer: Buffer) => deliver(buffer.subarray(0, n));
  handle.useUserBuffer(readBuffer);
  return true;
}

export function bindSocket(socket: net.Socket, events: SocketEvents): void {
  if (!readStraightInto(socket, events.data)) socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('error', () => socket.destroy());
  socket.once('close', () => events.closed());
}
