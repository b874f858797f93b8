/**
 * A real re-exec, looked at from outside: with XENSTORED_SIM_LU_TRACE set,
 * both images record the pause's phases in order, as the bench reads them
 * (src/bench/pause-phases.ts); and the guard wrapper leaves nothing behind: the daemon
 * keeps its pid, has no child (no zombie of the wrapper), and the guard
 * goes once the new image has restored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { takePausePhases } from '../../src/bench/pause-phases.js';
import { PAUSE_TRACE_ENV } from '../../src/liveupdate/pause-trace.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { SIM_CLI, startSim, StartedDaemons } from '../helpers/sim-daemon.js';

const started = new StartedDaemons('SIGTERM');
const { sims, clients, pidFiles } = started;
afterEach(() => started.stopAll());

const PHASES = [
  'update requested', 'pause begins', 'dumped', 'state written', 'exec',
  'node started', 'v8 up', 'node bootstrapped', 'modules loaded', 'state read',
  'records decoded', 'store rebuilt', 'sockets adopted', 'resumed',
];

/** The processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'latin1');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(e)] : [];
    } catch {
      return [];
    }
  });
}

/** Guard shells started for the daemon of `rundir`. */
function guardsOf(rundir: string): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'latin1');
      const env = fs.readFileSync(`/proc/${e}/environ`, 'latin1');
      return cmd.includes('xenstored-sim-lu-guard') && env.includes(`XENSTORED_RUNDIR=${rundir}\0`) ? [Number(e)] : [];
    } catch {
      return [];
    }
  });
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('live update by re-exec: the pause trace and the guard wrapper', () => {
  it('records every phase in order, within the update; keeps the pid; leaves no child and no guard', async () => {
    const rundir = fs.mkdtempSync('/tmp/xs-lut-');
    const trace = path.join(rundir, 'pause-trace');
    const sim = await startSim({ rundir, env: { [PAUSE_TRACE_ENV]: trace } });
    sims.push(sim);
    const c = await WireClient.connect(sim.socketPath);
    clients.push(c);
    expect((await c.call(T.WRITE, '/kept\0value')).text).toBe('OK\0');
    expect((await c.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
    // The marks' clock: wall-clock milliseconds, as performance.timeOrigin + now() gives.
    const before = performance.timeOrigin + performance.now();
    expect((await c.call(T.CONTROL, 'live-update\0-s\0')).text).toBe('OK\0');
    expect((await c.call(T.READ, '/kept\0')).text).toBe('value');
    const after = performance.timeOrigin + performance.now();
    const marks = fs.readFileSync(trace, 'utf8').trim().split('\n').map((line) => {
      const at = line.lastIndexOf(' ');
      return { name: line.slice(0, at), ms: Number(line.slice(at + 1)) };
    });
    expect(marks.map((m) => m.name)).toEqual(PHASES);
    // Each image's marks in time order; all of them during this update (two processes' clocks: a little slack).
    const exec = PHASES.indexOf('exec');
    for (const image of [marks.slice(0, exec + 1), marks.slice(exec + 1)]) {
      image.slice(1).forEach((m, i) => expect(m.ms).toBeGreaterThanOrEqual(image[i]!.ms));
    }
    for (const { ms } of marks) {
      expect(ms).toBeGreaterThan(before - 50);
      expect(ms).toBeLessThan(after + 50);
    }
    // The bench's reading of it: one update, its phases from the pause's start on; the file is emptied.
    const [update, ...more] = takePausePhases(trace);
    expect(more).toEqual([]);
    expect(update!.map(([name]) => name)).toEqual(PHASES.slice(PHASES.indexOf('pause begins') + 1));
    expect(update!.reduce((sum, [, ms]) => sum + ms, 0)).toBeCloseTo(marks.at(-1)!.ms - marks[1]!.ms, 6);
    expect(fs.readFileSync(trace, 'utf8')).toBe('');
    expect(fs.readFileSync(`/proc/${sim.pid}/cmdline`, 'latin1')).toContain('-U');
    expect(childrenOf(sim.pid)).toEqual([]);
    await waitFor('the guard to stand down', () => guardsOf(sim.rundir).length === 0);
  }, 60_000);

  it('by spawn (no re-exec addon): the wrapper hands the descriptors on at 3..; state kept, new pid, no guard left', async () => {
    const rundir = fs.mkdtempSync('/tmp/xs-lut-');
    const pidFile = path.join(rundir, 'xenstored.pid');
    const sim = await startSim({ rundir, args: ['-F', pidFile], env: { XENSTORED_SIM_NO_NATIVE: '1' } });
    sims.push(sim);
    pidFiles.push(pidFile);
    const c = await WireClient.connect(sim.socketPath);
    clients.push(c);
    expect((await c.call(T.WRITE, '/kept\0value')).text).toBe('OK\0');
    expect((await c.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
    expect((await c.call(T.CONTROL, 'live-update\0-s\0')).text).toBe('OK\0');
    expect((await c.call(T.READ, '/kept\0')).text).toBe('value');
    await sim.exited;
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pid).not.toBe(sim.pid);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')).toContain('-U');
    expect(sim.stderr()).toContain('handed over to a spawned successor');
    await waitFor('the guard to stand down', () => guardsOf(rundir).length === 0);
    expect((await c.call(T.READ, '/kept\0')).text).toBe('value');
  }, 60_000);
});
