/**
 * The round-trip floor on the Node side: a server that answers every
 * request frame at once with a fixed payload, through the daemon's own
 * socket path (bindSocket, FrameReader, the socket transport's write per
 * batch, the poll window) but with no XenStore work. Compared with
 * bench/echo.c it shows what the I/O path costs in Node before any request
 * is handled.
 *
 * Run as `node dist/bench/echo-server.js SOCKET PAYLOAD_BYTES`; prints "ready".
 */
import fs from 'node:fs';
import net from 'node:net';
import { encodeFrame } from '../protocol/frame.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { bindSocket, socketTransport } from '../protocol/unix-transport.js';
import { PollWindow } from '../daemon/poll-window.js';
import { DEFAULT_POLL_WINDOW_US } from '../daemon/options.js';

const [socketPath, size] = process.argv.slice(2);
const payload = Buffer.alloc(Number(size), 'x');
payload[payload.length - 1] = 0;
fs.rmSync(socketPath!, { force: true });

const pollWindow = new PollWindow(DEFAULT_POLL_WINDOW_US / 1000);

const server = net.createServer((socket) => {
  const reader = new FrameReader();
  const transport = socketTransport(socket);
  bindSocket(socket, {
    data: (chunk) => {
      const replies = reader.push(chunk).map((f) => encodeFrame({ ...f, payload }));
      if (replies.length === 0) return;
      transport.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies), () => {});
      pollWindow.activity(socket);
    },
    closed: () => {},
  });
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
