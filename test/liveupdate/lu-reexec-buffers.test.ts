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
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { reexecAvailable, reexecUnavailableReason } from '../../src/liveupdate/exec-image.js';
import { dumpDaemon } from '../../src/liveupdate/state-dump.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import type { Frame } from '../../src/protocol/frame.js';
import { MessageType as T, messageTypeName } from '../../src/wire/vocabulary.js';
import { connect, onTearDown, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { CI } from '../helpers/requirements.js';
import { sleep, waitFor } from '../helpers/wait.js';

const VALUE = 'v'.repeat(4000);

tearDownAfterEach();

/** A client that does not read until told to (`readAll`). */
const connectSlowReader = (socketPath: string) => WireClient.connect(socketPath, { paused: true, maxPayload: 1 << 20 });

const describeFrame = (f: Frame) =>
  `${messageTypeName(f.type)} req=${f.reqId} ${f.payload.length === VALUE.length && f.payload.toString('latin1') === VALUE ? 'VALUE' : JSON.stringify(f.payload.toString('latin1').slice(0, 40))}`;

/** Sends READ /big with req ids from..to (the client's next ones), a few at a time. */
async function sendReads(slow: WireClient, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) {
    expect(slow.send(T.READ, '/big\0')).toBe(i);
    if (i % 50 === 0) await sleep(1);
  }
}

/** Request bytes handed to the kernel, so on the daemon's side of the socket (the rest wait in Node). */
const inKernel = (slow: WireClient) => slow.bytesSent - slow.socket.writableLength;

/**
 * Starts reading, sends a barrier request and resolves with everything
 * received before the barrier's reply (replies come in order, so a
 * duplicate could not arrive after it).
 */
async function readAll(slow: WireClient, timeoutMs = 30_000): Promise<string[]> {
  slow.resume();
  const barrierReq = slow.send(T.GET_DOMAIN_PATH, '0\0');
  const barrier = (f: Frame) => f.reqId === barrierReq && f.type === T.GET_DOMAIN_PATH;
  await waitFor('the barrier reply', () => slow.received.some(barrier) || slow.framingError !== undefined || slow.closed, timeoutMs);
  return slow.received.slice(0, slow.received.findIndex(barrier)).map(describeFrame);
}

const expectedReads = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `READ req=${from + i} VALUE`);

async function liveUpdate(control: WireClient): Promise<void> {
  expect((await control.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
  // The reply comes from the new image: allow for a slow machine (the dry run starts a node process).
  expect((await control.call(T.CONTROL, 'live-update\0-s\0-t\x0010\0', 0, 30_000)).text).toBe('OK\0');
}

/** A spawned daemon tracing every reply (so a test can wait until it answered a request), with /big written. */
async function startWithBig(): Promise<{ sim: SimDaemon; control: WireClient; answered: (reqId: number) => boolean }> {
  const rundir = fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-lub-'));
  onTearDown(() => fs.rmSync(rundir, { recursive: true, force: true }));
  const trace = path.join(rundir, 'trace');
  const sim = await startSim({ rundir, args: ['--trace-file', trace] });
  onTearDown(() => sim.stop());
  const control = await connect(sim.socketPath);
  expect((await control.call(T.WRITE, `/big\0${VALUE}`)).text).toBe('OK\0');
  const answered = (reqId: number) => new RegExp(`^OUT conn\\d+ \\S+ READ req ${reqId} `, 'm').test(fs.readFileSync(trace, 'utf8'));
  return { sim, control, answered };
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
    const { sim, control, answered } = await startWithBig();
    const slow = await connectSlowReader(sim.socketPath);
    onTearDown(() => slow.close());
    // 100 replies of 4 KB: more than the kernel takes, far less than the daemon's high-water mark.
    await sendReads(slow, 1, 100);
    await waitFor('the daemon to answer all 100 reads', () => answered(100));
    await liveUpdate(control);
    const replies = await readAll(slow);
    expect(slow.framingError).toBeUndefined();
    expect(replies).toEqual(expectedReads(1, 100));
    expect(slow.closed).toBe(false);
  }, 30_000);

  reexecIt('requests of a client the daemon stopped reading (it does not read its replies) are all answered', async () => {
    needReexec();
    const { sim, control, answered } = await startWithBig();
    const slow = await connectSlowReader(sim.socketPath);
    onTearDown(() => slow.close());
    // 3000 replies of 4 KB (12 MB): the daemon stops reading this client at 1 MB of output (256 replies).
    await sendReads(slow, 1, 3000);
    await waitFor('the daemon near its high-water mark', () => answered(200));
    expect(answered(3000)).toBe(false); // the daemon did stop reading
    await liveUpdate(control);
    const replies = await readAll(slow, 60_000);
    expect(slow.framingError).toBeUndefined();
    expect(replies).toEqual(expectedReads(1, 3000));
  }, 60_000);

  it('pausing a client leaves its unread requests in the kernel, so the state dump misses none', async () => {
    const daemon = await startDaemon();
    const setup = await connect(daemon.options.socketPath);
    await setup.call(T.WRITE, `/big\0${VALUE}`);
    const known = daemon.connections.size;
    const slow = await connectSlowReader(daemon.options.socketPath);
    onTearDown(() => slow.close());
    await waitFor('the daemon to accept the connection', () => daemon.connections.size > known);
    const conn = [...daemon.connections.values()].at(-1)!;
    // Sockets read straight into the daemon's buffer, so pause() stops reading at the kernel.
    daemon.socketOf(conn)!.pause();
    await sendReads(slow, 1, 3000);
    await waitFor('requests in the kernel', () => inKernel(slow) > 0);
    expect(daemon.socketOf(conn)!.readableLength, 'bytes Node read ahead for a paused socket').toBe(0);
    expect(conn.unprocessedInput()).toEqual(conn.reader.unconsumed());
    const stream = dumpDaemon(daemon, { version: 2, includeInFlight: true });
    const record = decodeStream(stream).records.map((r) => r.record).filter((r) => r.kind === 'connection').at(-1)!;
    expect(record.kind === 'connection' && record.inData).toEqual(conn.reader.unconsumed());
  }, 30_000);
});
