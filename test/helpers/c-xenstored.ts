/**
 * Starts the real C xenstored (Debian's 4.17, under the reference kit's
 * LD_PRELOAD shim) for tests:
 *
 *   const xs = await startCXenstored();          // fresh temporary rundir
 *   const c = await XsClient.connect(xs.socketPath);
 *   ...
 *   await xs.stop();
 *
 * The kit is looked up as everywhere in the tests (requirements.ts:
 * $XS_REF_KIT, ../shared/peers/xenstored-ref, /work/shared/peers/xenstored-ref). When the kit is missing or the daemon does not come up,
 * startCXenstored rejects with an error saying so — a test file using it in
 * beforeAll fails instead of silently skipping.
 *
 * Daemons are started with `setsid`, so they would outlive a crashed test
 * run; every daemon not stopped yet is SIGKILLed when this process exits.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findKit, KIT_CANDIDATES } from './requirements.js';

/** What a test needs from the daemon under test, whichever implementation it is. */
export interface DaemonUnderTest {
  /** The daemon's Unix socket (what it printed as XENSTORED_PATH). */
  socketPath: string;
  /** Stops the daemon and cleans up; safe to call twice. */
  stop(): Promise<void>;
}

export interface CXenstored extends DaemonUnderTest {
  pid: number;
  rundir: string;
}

/** The kit, found where every test looks for it (requirements.ts); the last candidate names it in errors. */
export const C_KIT_DIR = findKit('start-cxenstored.sh') ?? KIT_CANDIDATES.at(-1)!;

/** Thrown when the reference kit is not there or cannot start a daemon. */
export class CKitUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CKitUnavailableError';
  }
}

const live = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of live) {
      if (isXenstored(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

function isXenstored(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('xenstored');
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * Starts C xenstored in `rundir` (default: a new temporary directory, which
 * stop() removes again) with `extraArgs` passed to the daemon (e.g.
 * ['-T', '/tmp/x/trace'] or quota options). Resolves once the daemon
 * answers on its socket.
 */
export async function startCXenstored(rundir?: string, extraArgs: readonly string[] = []): Promise<CXenstored> {
  const script = path.join(C_KIT_DIR, 'start-cxenstored.sh');
  try {
    fs.accessSync(script, fs.constants.X_OK);
  } catch {
    throw new CKitUnavailableError(
      `C xenstored reference kit unavailable: ${script} is missing or not executable ` +
        `(set XS_REF_KIT to the kit directory; see its README.md)`,
    );
  }
  const ownRundir = rundir === undefined;
  // Short base: AF_UNIX socket paths must stay below 108 bytes.
  const dir = ownRundir ? fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-c-')) : path.resolve(rundir);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.XENSTORED_PATH; // would make the daemon bind another daemon's socket

  let stdout: string;
  try {
    stdout = await new Promise<string>((resolve, reject) => {
      execFile(script, [dir, ...extraArgs], { env, timeout: 120_000 }, (err, out, errOut) => {
        if (err) reject(new Error(`${err.message.split('\n')[0]}\n${errOut}${out}`));
        else resolve(out);
      });
    });
  } catch (e) {
    let log = '';
    try {
      log = fs.readFileSync(path.join(dir, 'xenstored.log'), 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      // no log
    }
    if (ownRundir) fs.rmSync(dir, { recursive: true, force: true });
    throw new CKitUnavailableError(`start-cxenstored.sh ${dir} failed: ${(e as Error).message}${log ? `\nxenstored.log:\n${log}` : ''}`);
  }
  const pid = Number(/^pid=(\d+)$/m.exec(stdout)?.[1]);
  const socketPath = /^XENSTORED_PATH=(.+)$/m.exec(stdout)?.[1];
  if (!pid || !socketPath) {
    throw new CKitUnavailableError(`start-cxenstored.sh printed no pid=/XENSTORED_PATH= lines: ${JSON.stringify(stdout)}`);
  }
  installExitHook();
  live.add(pid);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const alive = () => isXenstored(pid);
      if (alive()) {
        process.kill(pid, 'SIGTERM');
        // C xenstored takes 1-2 s to act on SIGTERM; its store is in memory
        // only, so there is nothing to lose by not waiting for that.
        if (!(await waitUntil(() => !alive(), 300)) && alive()) process.kill(pid, 'SIGKILL');
        await waitUntil(() => !alive(), 5000);
      }
      live.delete(pid);
      fs.rmSync(path.join(dir, 'xenstored.pid'), { force: true });
      if (ownRundir) fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  return { socketPath, pid, rundir: dir, stop };
}

/** The kit's guest-ring-proxy.py for one guest domain of a C daemon. */
export interface GuestProxy {
  /** SIGTERM, and waits until it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `guest-ring-proxy.py RUNDIR DOMID` (after dom0 has introduced the
 * domain): `RUNDIR/domain/DOMID` then reaches C's real ring path as that
 * guest. Resolves once the proxy printed "ready".
 */
export function startGuestProxy(rundir: string, domid: number): Promise<GuestProxy> {
  const script = path.join(C_KIT_DIR, 'guest-ring-proxy.py');
  const child = spawn('/usr/bin/python3', [script, rundir, String(domid)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) resolve({ stop });
    });
    child.once('exit', (code) => reject(new CKitUnavailableError(`guest-ring-proxy.py ${rundir} ${domid} exited (${code}) before it was ready: ${err}`)));
  });
}
