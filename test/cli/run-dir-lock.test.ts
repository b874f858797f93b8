/**
 * One daemon per run directory, through the CLI: the daemon holds
 * <rundir>/xenstored.pid for its life, across live updates, and every
 * other daemon started on that run directory exits saying who holds it,
 * leaving the holder's socket and pid file alone. Both locks: flock(2)
 * through the native addon, and the pid file itself without the addon
 * (XENSTORED_SIM_NO_NATIVE=1, where a live update spawns a successor with a
 * new pid).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimWithDaemon } from '../../src/testing/start-sim.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { reexecAvailable, reexecUnavailableReason } from '../../src/liveupdate/exec-image.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** How many daemons race for one run directory. */
const RIVALS = 6;

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join('/tmp', 'xs-lock-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const pidFileOf = (rundir: string) => path.join(rundir, 'xenstored.pid');
const pidIn = (rundir: string) => Number(fs.readFileSync(pidFileOf(rundir), 'utf8'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops whatever daemon the run directory's pid file names when the test
 * ends (after a live update by spawn it is no longer the child started).
 */
function stopHolderAfterwards(rundir: string): void {
  cleanups.push(async () => {
    let pid: number;
    try {
      pid = pidIn(rundir);
    } catch {
      return;
    }
    if (!(pid > 0) || pid === process.pid || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    await waitFor(`daemon ${pid} to exit`, () => !alive(pid));
  });
}

/** Starts RIVALS daemons on `rundir` at once: those that serve, and the others' stderr. */
async function race(rundir: string, env: NodeJS.ProcessEnv): Promise<{ serving: SimDaemon[]; refusals: string[] }> {
  const outcomes = await Promise.allSettled(Array.from({ length: RIVALS }, () => startSim({ rundir, env, timeoutMs: 60_000 })));
  const serving = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  for (const sim of serving) cleanups.push(() => sim.stop());
  return { serving, refusals: outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : [])) };
}

const heldMessage = (rundir: string, pid: number) =>
  `a daemon (pid ${pid}) is already running in ${rundir}: it holds ${pidFileOf(rundir)}. Stop it first, or choose another run directory`;

async function write(socketPath: string, key: string): Promise<string> {
  const client = await WireClient.connect(socketPath);
  try {
    return (await client.call(T.WRITE, `/${key}\0yes`)).text;
  } finally {
    client.close();
  }
}

describe.each([
  ['flock through the native addon', {}],
  ['the pid file alone (no addon)', { XENSTORED_SIM_NO_NATIVE: '1' }],
] as const)('the run directory lock: %s', (name, env) => {
  const needsAddon = name.startsWith('flock');
  const check = () => {
    if (needsAddon) expect(reexecAvailable(), `the native addon: ${reexecUnavailableReason()}`).toBe(true);
  };

  it(`of ${RIVALS} daemons started at once on a fresh run directory, exactly one serves; the others exit saying so and leave its socket and pid file alone`, async () => {
    check();
    const rundir = path.join(tempDir(), 'run');
    stopHolderAfterwards(rundir);
    const { serving, refusals } = await race(rundir, env);
    expect(serving).toHaveLength(1);
    const winner = serving[0]!;
    expect(refusals).toHaveLength(RIVALS - 1);
    for (const refusal of refusals) {
      expect(refusal).toContain('exited (1) before printing XENSTORED_PATH=');
      expect(refusal).toContain(heldMessage(rundir, winner.pid));
    }
    expect(pidIn(rundir)).toBe(winner.pid);
    expect(fs.lstatSync(winner.socketPath).isSocket()).toBe(true);
    expect(await write(winner.socketPath, 'winner')).toBe('OK\0');
  }, 120_000);

  it('the lock is kept across a live update: rivals started after it are refused too', async () => {
    check();
    const rundir = path.join(tempDir(), 'run');
    stopHolderAfterwards(rundir);
    const first = await startSim({ rundir, env });
    cleanups.push(() => first.stop());
    const socketInode = fs.lstatSync(first.socketPath).ino;
    const client = await WireClient.connect(first.socketPath);
    cleanups.push(() => client.close());
    expect((await client.call(T.WRITE, '/before\0yes')).text).toBe('OK\0');
    expect((await client.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
    expect((await client.call(T.CONTROL, 'live-update\0-s\0')).text).toBe('OK\0');
    const holder = pidIn(rundir);
    // By exec the pid stays; the spawned successor has its own, and the pid file names it.
    if (needsAddon) expect(holder).toBe(first.pid);
    else expect(holder).not.toBe(first.pid);
    expect(alive(holder)).toBe(true);
    const { serving, refusals } = await race(rundir, env);
    expect(serving).toHaveLength(0);
    for (const refusal of refusals) expect(refusal).toContain(heldMessage(rundir, holder));
    expect(pidIn(rundir)).toBe(holder);
    expect(fs.lstatSync(first.socketPath).ino).toBe(socketInode);
    expect((await client.call(T.READ, '/before\0')).text).toBe('yes');
  }, 120_000);

  it('the lock goes with its daemon: after SIGKILL the next daemon starts; after a clean stop the pid file is gone', async () => {
    check();
    const rundir = path.join(tempDir(), 'run');
    stopHolderAfterwards(rundir);
    const killed = await startSim({ rundir, env });
    process.kill(killed.pid, 'SIGKILL');
    await killed.exited;
    expect(pidIn(rundir)).toBe(killed.pid);
    const next = await startSim({ rundir, env });
    cleanups.push(() => next.stop());
    expect(pidIn(rundir)).toBe(next.pid);
    expect(await write(next.socketPath, 'next')).toBe('OK\0');
    await next.stop();
    expect(fs.existsSync(pidFileOf(rundir))).toBe(false);
  }, 60_000);
});

describe('the run directory lock in process', () => {
  it('an in-process live update hands it to the new daemon, whose stop lets it go', async () => {
    const sim = await startSimWithDaemon();
    cleanups.push(() => sim.handle.stop());
    const old = sim.daemon();
    const lock = old.runLock;
    expect(lock?.file).toBe(pidFileOf(sim.handle.rundir));
    sim.liveUpdateNow();
    expect(sim.daemon()).not.toBe(old);
    expect(sim.daemon().runLock).toBe(lock);
    const rival = spawnSync(process.execPath, [SIM_CLI], { env: { ...process.env, XENSTORED_RUNDIR: sim.handle.rundir }, encoding: 'utf8', timeout: 20_000 });
    expect(rival.status).toBe(1);
    expect(rival.stderr).toContain(heldMessage(sim.handle.rundir, process.pid));
    await sim.daemon().close();
    expect(fs.existsSync(pidFileOf(sim.handle.rundir))).toBe(false);
  });
});
