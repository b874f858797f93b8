/**
 * Guest clients waiting for their domain's ring (parked: connected to
 * <rundir>/domain/<id> while another client holds the ring) survive a live
 * update: after it they are admitted in the order they came, once the
 * holder has gone, or refused with EBUSY when their patience runs out with
 * the holder still there — exactly as without the update. Both ways: a
 * real re-exec of the CLI daemon, and the in-process update.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimWithDaemon } from '../../src/testing/start-sim.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { SIM_CLI, startSim } from '../helpers/sim-daemon.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A daemon with domain 5 introduced, and a way to live-update it. */
interface Subject {
  dom0: WireClient;
  guestSocket: string;
  liveUpdate(): Promise<void>;
}

async function client(socketPath: string): Promise<WireClient> {
  const c = await WireClient.connect(socketPath);
  cleanups.push(() => c.close());
  return c;
}

async function introduce5(dom0: WireClient): Promise<void> {
  expect((await dom0.call(T.WRITE, '/local/domain/5\0')).text).toBe('OK\0');
  expect((await dom0.call(T.SET_PERMS, '/local/domain/5\0n5\0')).text).toBe('OK\0');
  expect((await dom0.call(T.INTRODUCE, '5\x001\x007\0')).text).toBe('OK\0');
}

/** Long enough that no newcomer runs out of patience during an update on a loaded machine. */
const PATIENT = ['--guest-patience-ms', '60000'];

async function reexecSubject(args: string[]): Promise<Subject> {
  const sim = await startSim({ args });
  cleanups.push(() => sim.stop());
  const dom0 = await client(sim.socketPath);
  await introduce5(dom0);
  return {
    dom0,
    guestSocket: sim.domainSocket(5),
    liveUpdate: async () => {
      expect((await dom0.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
      expect((await dom0.call(T.CONTROL, 'live-update\0-s\0')).text).toBe('OK\0');
    },
  };
}

/**
 * A new image that passes the dry run, then exits: the guard starts the
 * previous image again (a new pid) on the kept copy of the state.
 */
async function fallbackSubject(args: string[]): Promise<Subject> {
  const s = await reexecSubject(args);
  const rundir = path.dirname(s.guestSocket.replace(/\/domain\/5$/, '/domain'));
  // The daemon the pid file names when the test ends is the previous image started again.
  cleanups.push(() => {
    try {
      process.kill(Number(fs.readFileSync(path.join(rundir, 'xenstored.pid'), 'utf8')), 'SIGTERM');
    } catch {
      // gone already
    }
  });
  const image = path.join(rundir, 'exits.sh');
  fs.writeFileSync(image, [
    '#!/bin/sh',
    `for a; do [ "$a" = --check-stream ] && exec '${process.execPath}' '${SIM_CLI}' "$@"; done`,
    'exit 3',
    '',
  ].join('\n'), { mode: 0o755 });
  return {
    ...s,
    liveUpdate: async () => {
      const pidFile = path.join(rundir, 'xenstored.pid');
      const before = fs.readFileSync(pidFile, 'utf8');
      expect((await s.dom0.call(T.CONTROL, `live-update\0-f\0${image}\0`)).text).toBe('OK\0');
      // The previous image, started again, sends the reply.
      expect((await s.dom0.call(T.CONTROL, 'live-update\0-s\0-t\x0010\0')).text).toBe('OK\0');
      // The reply may come a moment before the previous image writes its pid.
      await waitFor('the previous image (a new pid) to serve', () => fs.readFileSync(pidFile, 'utf8') !== before);
    },
  };
}

async function inProcessSubject(args: string[]): Promise<Subject> {
  const sim = await startSimWithDaemon({ args });
  cleanups.push(() => sim.handle.stop());
  const dom0 = await client(sim.handle.path);
  await introduce5(dom0);
  return {
    dom0,
    guestSocket: `${sim.daemon().domainDir}/5`,
    liveUpdate: async () => {
      const before = sim.daemon();
      sim.liveUpdateNow();
      expect(sim.daemon()).not.toBe(before);
      expect((await dom0.call(T.READ, '/local/domain/5\0')).type).toBe(T.READ);
    },
  };
}

/** The replies `c` has received so far, as text. */
const answered = (c: WireClient) => c.received.filter((f) => f.type !== T.WATCH_EVENT).map((f) => f.payload.toString('latin1'));

/** Two round trips of the holder: by then the daemon has had a whole turn to read what newcomers sent. */
async function holderRoundTrips(holder: WireClient): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await holder.call(T.READ, 'n\0')).type).toBe(T.READ);
}

describe.each([
  ['a real re-exec', reexecSubject],
  ['a re-exec whose new image exits (falling back to the previous image)', fallbackSubject],
  ['the in-process live update', inProcessSubject],
])('guest clients waiting for the ring across %s', (_name, subject) => {
  it('are admitted after it in the order they came, each once the one before has gone', async () => {
    const s = await subject(PATIENT);
    const holder = await client(s.guestSocket);
    expect((await holder.call(T.WRITE, 'n\x000')).text).toBe('OK\0');
    const second = await client(s.guestSocket);
    const secondWrite = second.send(T.WRITE, 'n\x002');
    const third = await client(s.guestSocket);
    const thirdRead = third.send(T.READ, 'n\0');
    await holderRoundTrips(holder);
    await s.liveUpdate();
    // Still waiting, unanswered and connected, while the holder holds on.
    await holderRoundTrips(holder);
    expect([answered(second), answered(third), second.closed, third.closed]).toEqual([[], [], false, false]);
    holder.close();
    expect((await second.take((f) => f.reqId === secondWrite)).payload.toString('latin1')).toBe('OK\0');
    expect(answered(third)).toEqual([]);
    second.close();
    expect((await third.take((f) => f.reqId === thirdRead)).payload.toString('latin1')).toBe('2');
  });

  it('one whose patience runs out with the holder still there gets EBUSY', async () => {
    const s = await subject(['--guest-patience-ms', '1500']);
    const holder = await client(s.guestSocket);
    expect((await holder.call(T.WRITE, 'n\x001')).text).toBe('OK\0');
    const newcomer = await client(s.guestSocket);
    const refused = newcomer.send(T.READ, 'n\0');
    await holderRoundTrips(holder);
    await s.liveUpdate();
    const refusal = await newcomer.take((f) => f.reqId === refused);
    expect({ type: refusal.type, text: refusal.payload.toString('latin1') }).toEqual({ type: T.ERROR, text: 'EBUSY\0' });
    await waitFor('the refused client to be disconnected', () => newcomer.closed);
    expect((await holder.call(T.READ, 'n\0')).text).toBe('1');
  });

  it('one that hangs up while waiting does not hold up the next', async () => {
    const s = await subject(PATIENT);
    const holder = await client(s.guestSocket);
    expect((await holder.call(T.WRITE, 'n\x003')).text).toBe('OK\0');
    const quitter = await client(s.guestSocket);
    quitter.send(T.READ, 'n\0');
    const next = await client(s.guestSocket);
    const waiting = next.send(T.READ, 'n\0');
    await holderRoundTrips(holder);
    await s.liveUpdate();
    quitter.close();
    holder.close();
    expect((await next.take((f) => f.reqId === waiting)).payload.toString('latin1')).toBe('3');
  });
});
