/**
 * spawnSim: the same handle over the `xenstored-sim` bin in a child
 * process, for end-to-end tests; its liveUpdate() is the real
 * `CONTROL live-update` re-exec (same PID, or a spawned successor where
 * the native addon is missing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHandle, makeRundir, simArgs, withConnection, type SimHandle, type SimOptions } from './sim-handle.js';

/** The `xenstored-sim` bin of this package (dist/cli/xenstored-sim.js, also when this module runs from src/). */
export function simBinaryPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', '..');
  return path.join(root, 'dist', 'cli', 'xenstored-sim.js');
}

export interface SpawnedDaemon {
  /** The main socket, as the daemon printed it. */
  socketPath: string;
  pid: number;
  /** Everything the daemon wrote to stderr so far (the last 256 KiB). */
  stderr(): string;
  /** Everything the daemon wrote to stdout so far (the XENSTORED_PATH= line first). */
  stdout(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it is gone. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  rundir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long to wait for the XENSTORED_PATH line (default 15 s). */
  timeoutMs?: number;
  /** Start the daemon under this umask (through sh), e.g. 0 to check its files' modes. */
  umask?: number;
}

/** Daemons of this process not stopped yet: killed when it exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killLeftoversOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const STDERR_LIMIT = 256 * 1024;

/**
 * Runs `node <bin> ...args` with XENSTORED_RUNDIR set and resolves once it
 * printed `XENSTORED_PATH=<socket>`; rejects with its stderr when it exits
 * first or is not there within the timeout.
 */
export async function spawnDaemon(bin: string, args: readonly string[], options: SpawnOptions): Promise<SpawnedDaemon> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.XENSTORED_PATH; // an inherited one belongs to some other daemon
  Object.assign(env, { XENSTORED_RUNDIR: options.rundir }, options.env ?? {});
  const timeoutMs = options.timeoutMs ?? 15_000;
  const [command, commandArgs] = options.umask === undefined
    ? [process.execPath, [bin, ...args]]
    : ['/bin/sh', ['-c', `umask ${options.umask.toString(8)} && exec "$0" "$@"`, process.execPath, bin, ...args]];
  const child = spawn(command, commandArgs, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  killLeftoversOnExit();
  live.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_LIMIT);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const what = `node ${[bin, ...args].join(' ')} (XENSTORED_RUNDIR=${options.rundir})`;
  const stderrText = () => (stderr.trim() ? `daemon stderr:\n${stderr.trimEnd()}` : 'daemon stderr: (empty)');

  let stdout = '';
  let socketPath: string;
  try {
    socketPath = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} printed no XENSTORED_PATH= line within ${timeoutMs} ms\n${stderrText()}`)), timeoutMs);
      const onData = (s: string) => {
        stdout += s;
        const nl = stdout.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (more: string) => (stdout += more)); // keep draining later output
        const m = /^XENSTORED_PATH=(.+)$/.exec(stdout.slice(0, nl));
        if (m) resolve(m[1]!);
        else reject(new Error(`${what}: first stdout line is not XENSTORED_PATH=<socket>: ${JSON.stringify(stdout.slice(0, nl))}\n${stderrText()}`));
      };
      child.stdout!.setEncoding('utf8').on('data', onData);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${what}: ${e.message}`));
      });
      void exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited (${how}) before printing XENSTORED_PATH=\n${stderrText()}`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }

  let stopping: Promise<void> | undefined;
  return {
    socketPath,
    pid: child.pid!,
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killTimer);
      })();
      return stopping;
    },
  };
}

const replyText = (reply: Buffer): string => reply.toString('utf8').replace(/\0$/, '');

export interface SpawnSimHandle extends SimHandle {
  /** The daemon's process id: the same after a live update by re-exec, the successor's after the spawn fallback. */
  pid(): number;
  /** Everything the first daemon process wrote to stderr so far. */
  stderr(): string;
}

export async function spawnSim(options: SimOptions = {}): Promise<SpawnSimHandle> {
  const rundir = makeRundir();
  const bin = simBinaryPath();
  const pidFile = path.join(rundir, 'xenstored.pid');
  let daemon: SpawnedDaemon;
  try {
    daemon = await spawnDaemon(bin, [...simArgs(options), '--pid-file', pidFile], { rundir });
  } catch (e) {
    fs.rmSync(rundir, { recursive: true, force: true });
    throw e;
  }
  const socketPath = daemon.socketPath;
  const pid = () => Number(fs.readFileSync(pidFile, 'utf8'));
  let dumps = 0;
  const handle = makeHandle({
    path: socketPath,
    rundir,
    // The connection asking for the dump is in it, always as the newest one.
    dumpHasRequester: true,
    dump: () => withConnection(socketPath, async (xs) => {
      const file = path.join(rundir, `snapshot-${++dumps}`);
      const reply = replyText(await xs.control('dump', file));
      if (reply !== 'OK') throw new Error(`CONTROL dump: ${reply}`);
      const stream = fs.readFileSync(file);
      fs.rmSync(file);
      return stream;
    }),
    liveUpdate: () => withConnection(socketPath, async (xs) => {
      for (const args of [['-f', bin], ['-s']]) {
        const reply = replyText(await xs.control('live-update', ...args));
        if (reply !== 'OK') throw new Error(`CONTROL live-update ${args.join(' ')}: ${reply}\n${daemon.stderr()}`);
      }
    }),
    close: async () => {
      const successor = pid();
      if (successor !== daemon.pid) await terminate(successor);
      await daemon.stop();
    },
  });
  return { ...handle, pid, stderr: () => daemon.stderr() };
}

/** Stops a process that is not our child (a successor from the spawn fallback): SIGTERM, SIGKILL after 5 s. */
async function terminate(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 5_000;
  while (alive()) {
    if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
