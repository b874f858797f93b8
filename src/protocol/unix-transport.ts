/** Plugs a Unix socket into a Connection: bytes in, bytes out, close. */
import type net from 'node:net';
import type { Transport } from './connection.js';

export interface SocketEvents {
  data(chunk: Buffer): void;
  drain(): void;
  closed(): void;
}

export function socketTransport(socket: net.Socket): Transport {
  return {
    write: (bytes) => socket.write(bytes),
    get writableLength() {
      return socket.writableLength;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.destroy(),
  };
}

export function bindSocket(socket: net.Socket, events: SocketEvents): void {
  socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('drain', () => events.drain());
  socket.on('error', () => socket.destroy());
  socket.once('close', () => events.closed());
}
