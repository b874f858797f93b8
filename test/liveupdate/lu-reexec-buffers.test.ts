/**
 * A re-exec live update must carry every byte that is in the old image's
 * user space and nowhere else: replies Node still holds for a client that
 * reads slowly, and requests Node has read from the kernel but not yet given
 * to the daemon (a connection the daemon paused because its client does not
 * read its replies). Bytes the kernel already holds must not be sent twice.
 *
 * The client here never reads while the update happens: it sends requests
 * for a 4000-byte value, the update runs (raw CONTROL live-update -f/-s from
 * another connection, so no kit is needed), then it reads everything and
 * must find each reply exactly once, in order, and nothing else.
 *
 * Needs the execve addon (build/Release/xs_execve.node): when it is missing
 * these tests FAIL if CI is set, and are skipped with a warning otherwise.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { reexecAvailable, reexecUnavailableReason } from '../../src/liveupdate/exec-image.js';
import { dumpDaemon } from '../../src/liveupdate/state-dump.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MessageType as T, messageTypeName } from '../../src/wire/vocabulary.js';
import { RawClient } from '../helpers/raw-client.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { CI } from '../helpers/requirements.js';

const VALUE = 'v'.repeat(4000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A client that does not read until told to; then checks every message. */
class SlowReader {
  private readonly socket: net.Socket;
  private readonly reader = new FrameReader(1 << 20);
  readonly replies: string[] = [];
  error: string | undefined;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.pause();
    socket.on('data', (chunk: Buffer) => {
      if (this.error) return;
      try {
        for (const f of this.reader.push(chunk)) {
          this.replies.push(`${messageTypeName(f.type)} req=${f.reqId} ${f.payload.length === VALUE.length && f.payload.toString('latin1') === VALUE ? 'VALUE' : JSON.stringify(f.payload.toString('latin1').slice(0, 40))}`);
        }
      } catch (e) {
        this.error = `${(e as Error).message} after ${this.replies.length} messages`;
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static connect(socketPath: string): Promise<SlowReader> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath, () => resolve(new SlowReader(s)));
      s.once('error', reject);
    });
  }

  /** Sends READ /big with req ids from..to, a few at a time. */
  async sendReads(from: number, to: number): Promise<void> {
    for (let i = from; i <= to; i++) {
      this.socket.write(encodeFrame({ type: T.READ, reqId: i, txId: 0, payload: Buffer.from('/big\0', 'latin1') }));
      if (i % 50 === 0) await sleep(1);
    }
  }

  get clientSideBacklog(): number {
    return this.socket.writableLength;
  }

  /** Starts reading; resolves once `count` messages are in (or after a quiet spell). */
  async readAll(count: number, timeoutMs = 15_000): Promise<void> {
    this.socket.resume();
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count && !this.error && !this.closed && Date.now() < deadline) await sleep(20);
    await sleep(200); // anything extra (duplicates) would arrive now
  }

  close(): void {
    this.socket.destroy();
  }
}

const expectedReads = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `READ req=${from + i} VALUE`);

async function liveUpdate(control: RawClient): Promise<void> {
  expect((await control.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
  // The reply comes from the new image: allow for a slow machine (the dry run starts a node process).
  const reqId = control.send(T.CONTROL, 'live-update\0-s\0-t\x0010\0');
  const reply = await control.take((f) => f.reqId === reqId && f.type !== T.WATCH_EVENT, 30_000);
  expect(reply.payload.toString('latin1')).toBe('OK\0');
}

async function startWithBig(): Promise<{ sim: SimDaemon; control: RawClient }> {
  const sim = await startSim();
  cleanups.push(() => sim.stop());
  const control = await RawClient.connect(sim.socketPath);
  cleanups.push(() => control.close());
  expect((await control.call(T.WRITE, `/big\0${VALUE}`)).text).toBe('OK\0');
  return { sim, control };
}

const missing = reexecAvailable() ? undefined : reexecUnavailableReason() ?? 'the execve addon is unavailable';
if (missing && !CI) console.warn(`!! SKIPPING lu-reexec-buffers: ${missing} (with CI set these tests fail instead)`);
const reexecIt = missing && !CI ? it.skip : it;
const needReexec = () => {
  if (missing) throw new Error(`re-exec in place is unavailable (CI is set, so this fails instead of skipping): ${missing}. Fix: npm install`);
};

describe('re-exec live update and bytes held in user space', () => {
  reexecIt('replies a slow client has not read yet arrive exactly once, in order', async () => {
    needReexec();
    const { sim, control } = await startWithBig();
    const slow = await SlowReader.connect(sim.socketPath);
    cleanups.push(() => slow.close());
    // 100 replies of 4 KB: more than the kernel takes, far less than the daemon's high-water mark.
    await slow.sendReads(1, 100);
    await sleep(300);
    await liveUpdate(control);
    await slow.readAll(100);
    expect(slow.error).toBeUndefined();
    expect(slow.replies).toEqual(expectedReads(1, 100));
    expect(slow.closed).toBe(false);
  }, 30_000);

  reexecIt('requests of a client the daemon stopped reading (it does not read its replies) are all answered', async () => {
    needReexec();
    const { sim, control } = await startWithBig();
    const slow = await SlowReader.connect(sim.socketPath);
    cleanups.push(() => slow.close());
    // 3000 replies of 4 KB (12 MB): the daemon stops reading this client at 1 MB of output.
    await slow.sendReads(1, 3000);
    await sleep(300);
    await liveUpdate(control);
    await slow.readAll(3000);
    expect(slow.error).toBeUndefined();
    expect(slow.replies).toEqual(expectedReads(1, 3000));
  }, 60_000);

  it('pausing a client leaves its unread requests in the kernel, so the state dump misses none', async () => {
    const rundir = fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-lub-'));
    const daemon = new Daemon(parseOptions([], { XENSTORED_RUNDIR: rundir }), () => {});
    await daemon.listen();
    cleanups.push(async () => {
      await daemon.close();
      fs.rmSync(rundir, { recursive: true, force: true });
    });
    const setup = await RawClient.connect(daemon.options.socketPath);
    cleanups.push(() => setup.close());
    await setup.call(T.WRITE, `/big\0${VALUE}`);
    const slow = await SlowReader.connect(daemon.options.socketPath);
    cleanups.push(() => slow.close());
    await sleep(100);
    const conn = [...daemon.connections.values()].at(-1)!;
    // Sockets read straight into the daemon's buffer, so pause() stops reading at the kernel.
    daemon.socketOf(conn)!.pause();
    await slow.sendReads(1, 3000);
    await sleep(300);
    expect(daemon.socketOf(conn)!.readableLength, 'bytes Node read ahead for a paused socket').toBe(0);
    expect(conn.unprocessedInput()).toEqual(conn.reader.unconsumed());
    const stream = dumpDaemon(daemon, { version: 2, includeInFlight: true });
    const record = decodeStream(stream).records.map((r) => r.record).filter((r) => r.kind === 'connection').at(-1)!;
    expect(record.kind === 'connection' && record.inData).toEqual(conn.reader.unconsumed());
  }, 30_000);
});
