/**
 * Plugs a Unix socket into a Connection: bytes in, bytes out, close. It
 * also answers two questions a live update asks, which need a look at
 * Node's internals: which bytes the kernel has not taken yet, and which
 * bytes were read from the kernel but not yet delivered.
 */
import type net from 'node:net';
import type { Transport } from './connection.js';

export interface SocketEvents {
  data(chunk: Buffer): void;
  drain(): void;
  closed(): void;
}

/** The parts of net.Socket's internals a live update needs (Node 20). */
interface SocketInternals {
  _bytesDispatched?: number;
  readableBuffer?: Iterable<Buffer>;
  _handle?: { writeQueueSize?: number; reading?: boolean; readStart?: () => number; readStop?: () => number } | null;
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

export function socketTransport(socket: net.Socket): Transport {
  return {
    write: (bytes) => socket.write(bytes),
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

export function bindSocket(socket: net.Socket, events: SocketEvents): void {
  socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('drain', () => events.drain());
  socket.on('error', () => socket.destroy());
  socket.once('close', () => events.closed());
}
