/**
 * Starts the compiled simulator CLI (dist/cli/xenstored-sim.js) as a child
 * process, the way a user or a real client sees it:
 *
 *   const sim = await startSim({ args: ['--compat', '4.17'] });
 *   // XENSTORED_PATH=sim.socketPath xenstore-read /tool/xenstored
 *   // XENSTORED_PATH=sim.domainSocket(5) ... acts as domain 5 (after INTRODUCE)
 *   await sim.stop();
 *
 * The run directory is a fresh short temporary directory (AF_UNIX paths must
 * stay below 108 bytes) handed to the daemon as XENSTORED_RUNDIR, unless
 * `rundir` is given. startSim resolves once the daemon printed its
 * `XENSTORED_PATH=<socket>` line, and rejects with the daemon's stderr when it
 * exits first or does not get there within `timeoutMs`.
 *
 * The process itself is started by the testing kit's spawnDaemon (what
 * `xenstored-sim/testing`'s spawnSim uses); this helper adds the build check
 * and the test-facing shape.
 *
 * dist/ is (re)built with `npm run build` when it is missing or
 * older than src/ (ensureBuilt). test/global-setup.ts does that once per
 * vitest run; outside such a run startSim checks by itself, so the helper
 * also works alone.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRundir } from '../../src/testing/sim-handle.js';
import { spawnDaemon, type SpawnedDaemon } from '../../src/testing/spawn-sim.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SIM_CLI = path.join(REPO_ROOT, 'dist', 'cli', 'xenstored-sim.js');
/** Written after every successful ensureBuilt() build; its mtime is the build time. */
const BUILD_STAMP = path.join(REPO_ROOT, 'dist', '.build-stamp');
const BUILD_LOCK = path.join(REPO_ROOT, 'dist', '.build-lock');

export interface StartSimOptions {
  /** Extra CLI arguments, e.g. ['--compat', '4.17']. */
  args?: string[];
  /** Extra environment for the daemon (on top of process.env). */
  env?: NodeJS.ProcessEnv;
  /** Run directory; default a new temporary one, removed again by stop(). */
  rundir?: string;
  /** How long to wait for the XENSTORED_PATH line (default 15 s). */
  timeoutMs?: number;
  /** Start the daemon under this umask (through sh), e.g. 0 to check its files' modes. */
  umask?: number;
}

export interface SimDaemon {
  /** The main socket, as printed by the daemon. */
  socketPath: string;
  rundir: string;
  pid: number;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s); removes a temporary rundir. */
  stop(): Promise<void>;
  /** `<rundir>/domain/<domid>`: a client connected there acts as that domain. */
  domainSocket(domid: number): string;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Everything the daemon wrote to stdout so far (the XENSTORED_PATH= line, a UI= line). */
  stdout(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** True when dist/ lacks the CLI or is older than src/, tsconfig.json, package.json or the bundling script. */
export function distIsStale(): boolean {
  const built = Math.min(mtime(SIM_CLI), mtime(BUILD_STAMP));
  if (built === 0) return true;
  const sources = Math.max(
    newestMtime(path.join(REPO_ROOT, 'src')),
    mtime(path.join(REPO_ROOT, 'tsconfig.json')),
    mtime(path.join(REPO_ROOT, 'package.json')),
    mtime(path.join(REPO_ROOT, 'scripts', 'bundle-cli.mjs')),
  );
  return sources > built;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Builds dist/ with `npm run build` if it is missing or stale.
 * Serialised across processes (vitest workers) by a lock directory. Throws
 * with the compiler's output when the build fails.
 */
export function ensureBuilt(): void {
  if (!distIsStale()) return;
  fs.mkdirSync(path.dirname(BUILD_LOCK), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      fs.mkdirSync(BUILD_LOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock older than 3 minutes belongs to a build that died.
      if (Date.now() - mtime(BUILD_LOCK) > 180_000) fs.rmSync(BUILD_LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`ensureBuilt: timed out waiting for ${BUILD_LOCK}`);
      sleepSync(100);
    }
  }
  try {
    if (!distIsStale()) return; // somebody else built it while we waited
    const started = Date.now();
    try {
      execFileSync('npm', ['run', 'build'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 300_000,
      });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`building dist/ failed: npm run build\n${err.stdout ?? ''}${err.stderr ?? ''}${err.stdout || err.stderr ? '' : err.message}`);
    }
    if (!fs.existsSync(SIM_CLI)) throw new Error(`npm run build succeeded but ${SIM_CLI} is missing`);
    // The stamp's mtime must be >= every source seen by this build.
    fs.writeFileSync(BUILD_STAMP, `built ${new Date(started).toISOString()}\n`);
  } finally {
    fs.rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

/**
 * Set by test/global-setup.ts once it has built dist/ for this vitest run.
 * Workers inherit it and then only build when dist/ is missing: rebuilding
 * in the middle of a run, because somebody edited src/ meanwhile, would swap
 * the daemon under other test files' feet.
 */
export const DIST_CHECKED_ENV = 'XENSTORED_SIM_DIST_CHECKED';

export async function startSim(options: StartSimOptions = {}): Promise<SimDaemon> {
  if (process.env[DIST_CHECKED_ENV] !== '1' || !fs.existsSync(SIM_CLI)) ensureBuilt();
  const ownRundir = options.rundir === undefined;
  const rundir = ownRundir ? makeRundir() : path.resolve(options.rundir!);
  fs.mkdirSync(rundir, { recursive: true });
  const removeRundir = () => {
    if (ownRundir) fs.rmSync(rundir, { recursive: true, force: true });
  };
  let daemon: SpawnedDaemon;
  try {
    daemon = await spawnDaemon(SIM_CLI, options.args ?? [], { rundir, env: options.env, cwd: REPO_ROOT, timeoutMs: options.timeoutMs, umask: options.umask });
  } catch (e) {
    removeRundir();
    throw e;
  }
  return {
    socketPath: daemon.socketPath,
    rundir,
    pid: daemon.pid,
    stop: async () => {
      await daemon.stop();
      removeRundir();
    },
    domainSocket: (domid: number) => path.join(rundir, 'domain', String(domid)),
    stderr: daemon.stderr,
    stdout: daemon.stdout,
    exited: daemon.exited,
  };
}

/**
 * What a live-update test started: daemons, clients, and pid files of
 * daemons a fallback or a spawn hand-over moved to a new pid. `stopAll`
 * (for afterEach) stops all of it, the moved daemons with `signal`.
 */
export class StartedDaemons {
  readonly sims: SimDaemon[] = [];
  readonly clients: { close(): void }[] = [];
  readonly pidFiles: string[] = [];

  constructor(private readonly signal: NodeJS.Signals) {}

  async stopAll(): Promise<void> {
    this.clients.splice(0).forEach((c) => c.close());
    for (const file of this.pidFiles.splice(0)) {
      try {
        process.kill(Number(fs.readFileSync(file, 'utf8')), this.signal);
      } catch {
        /* already gone */
      }
    }
    for (const sim of this.sims.splice(0)) {
      await sim.stop();
      fs.rmSync(sim.rundir, { recursive: true, force: true });
    }
  }
}
