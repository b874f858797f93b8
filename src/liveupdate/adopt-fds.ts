/**
 * Descriptor plumbing for live update, on both sides of the hand-over
 * (./exec-image.ts has the hand-over itself and the fd-mapping contract).
 *
 * Predecessor: {@link fdOf} finds the descriptor behind a net.Server or
 * net.Socket; {@link stopReading} keeps a socket's unread bytes in the kernel
 * so that the successor reads them.
 *
 * Successor: {@link adoptListeningSocket} and {@link adoptConnectedSocket}
 * wrap inherited descriptors in net objects again. Notes, checked by
 * test/liveupdate/exec-image.test.ts:
 *  - The descriptors arrive with O_NONBLOCK already set (Node's sockets are
 *    non-blocking and that flag lives in the shared open file description);
 *    libuv sets it anyway when it adopts a descriptor, so either state works.
 *  - FD_CLOEXEC: at startup Node (libuv's uv_disable_stdio_inheritance) sets
 *    it on fds 0-15 and on higher ones up to the first unused number. After a
 *    re-exec the kept fds are often above such a gap (say 18 and 19) and
 *    arrive without it, so the adopt helpers set it again through the native
 *    addon: otherwise every child the successor spawns would inherit the
 *    daemon's sockets. After the spawn fallback the fds are 3, 4, ... with no
 *    gap, so Node's startup has already marked them, addon or not.
 *  - Connections queued in the listen backlog during the hand-over are accepted
 *    by the successor: the listening socket never closes, so clients do not see
 *    ECONNREFUSED.
 *  - An adopted Unix-socket server does not know its path: `address()` is
 *    null, and `close()` does not unlink it (libuv unlinks only paths it
 *    bound itself). Unlink it yourself at shutdown if you want it gone.
 *  - The helpers accept Unix (Node "PIPE") and TCP sockets; anything else
 *    throws ERR_INVALID_FD_TYPE (connected) or fails with EINVAL (listening).
 */
import net from 'node:net';
import { markCloexec } from './exec-image.js';

/** The libuv handle Node keeps behind net.Server and net.Socket (internal API). */
interface HandleHolder {
  _handle?: {
    fd?: number;
    reading?: boolean;
    readStart?: () => number;
    readStop?: () => number;
  } | null;
}

/**
 * The file descriptor of a listening net.Server or a connected net.Socket
 * (Node 20: `_handle.fd`). Throws when there is none: not yet listening or
 * connected, already closed, or a platform without descriptors (Windows).
 */
export function fdOf(handle: net.Server | net.Socket): number {
  const fd = (handle as unknown as HandleHolder)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('no file descriptor: not listening/connected, closed, or unsupported platform');
  }
  return fd;
}

export { stopReading, resumeReading } from '../protocol/unix-transport.js';

/**
 * Listens on an inherited listening socket (`server.listen({ fd })`). Pass
 * `server` to have your 'connection' handlers in place before anything is
 * accepted; connections already waiting in the backlog are accepted then.
 */
export function adoptListeningSocket(fd: number, server: net.Server = net.createServer()): Promise<net.Server> {
  checkFd(fd);
  markCloexec([fd]);
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(server);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ fd });
  });
}

/**
 * Wraps an inherited connected socket. Reading starts at once: bytes the peer
 * sent before the hand-over and nobody read come first.
 */
export function adoptConnectedSocket(fd: number, options: { allowHalfOpen?: boolean } = {}): net.Socket {
  checkFd(fd);
  const socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: options.allowHalfOpen ?? false });
  markCloexec([fd]);
  return socket;
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`bad file descriptor ${fd}`);
}
