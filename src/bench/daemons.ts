/**
 * The two daemons under test, behind one interface: xenstored-sim started
 * from this checkout's dist/, and C xenstored 4.17 started through the
 * xenstored-ref kit (when the kit and its cache are there).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PAUSE_TRACE_ENV } from '../liveupdate/pause-trace.js';

export interface BenchDaemon {
  readonly name: string;
  readonly socket: string;
  readonly pid: number;
  /** What `live-update -f` is given: the daemon's own executable. */
  readonly liveUpdateBinary: string;
  /** xenstored-sim only: the file its live updates write their pause's phases to (see pause-phases.ts). */
  readonly pauseTrace?: string;
  stop(): Promise<void>;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

export async function startSim(repo: string, rundir: string): Promise<BenchDaemon> {
  fs.rmSync(rundir, { recursive: true, force: true });
  fs.mkdirSync(rundir, { recursive: true });
  const entry = path.join(repo, 'dist', 'cli', 'xenstored-sim.js');
  const pauseTrace = path.join(rundir, 'pause-trace');
  // Run as its executable, so with the node flags on its #! line, as a user runs it.
  const child = spawn(entry, ['--compat', '4.17'], {
    env: { ...process.env, XENSTORED_RUNDIR: rundir, [PAUSE_TRACE_ENV]: pauseTrace },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const socket = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /XENSTORED_PATH=(.*)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`xenstored-sim exited with ${code} before it was ready`)));
  });
  return {
    name: 'sim',
    socket,
    pid: child.pid!,
    liveUpdateBinary: entry,
    pauseTrace,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The xenstored-ref kit, looked up as the CI script does. */
export function findKit(repo: string): string | undefined {
  const candidates = [process.env.XS_REF_KIT, path.join(repo, '..', 'shared', 'peers', 'xenstored-ref'), '/work/shared/peers/xenstored-ref'];
  return candidates.find((dir): dir is string => !!dir && fs.existsSync(path.join(dir, 'start-cxenstored.sh')));
}

function refHome(): string {
  return process.env.XS_REF_HOME ?? '/var/cache/xenstored-ref';
}

/** Version of the unpacked xen-utils package, if the kit's cache has one. */
export function cVersion(): string | undefined {
  try {
    return fs.readFileSync(path.join(refHome(), '.xen-utils-version'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export async function startC(kit: string, rundir: string): Promise<BenchDaemon> {
  fs.rmSync(rundir, { recursive: true, force: true });
  const out = execFileSync(path.join(kit, 'start-cxenstored.sh'), [rundir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
  const socket = /XENSTORED_PATH=(.*)/.exec(out)?.[1];
  if (!pid || !socket) throw new Error(`start-cxenstored.sh said: ${out}`);
  return {
    name: 'C',
    socket,
    pid,
    liveUpdateBinary: path.join(refHome(), 'usr', 'lib', 'xen-4.17', 'bin', 'xenstored'),
    stop: async () => {
      execFileSync(path.join(kit, 'stop-cxenstored.sh'), [rundir], { stdio: 'ignore' });
    },
  };
}
