/**
 * Live update by re-exec: dump the whole state (the `-s` reply already in
 * the requester's output) to <rundir>/state_dump, make sure the new image
 * accepts that stream, then replace this process image keeping every socket
 * descriptor. If re-exec is impossible the descriptors go to a spawned
 * successor instead (new PID). On any failure the old image keeps serving.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateFile } from '../daemon/private-files.js';
import type { LiveUpdateHost } from './host.js';
import type { Connection } from '../protocol/connection.js';
import { encodeFrame, type Frame } from '../protocol/frame.js';
import { fdOf } from './adopt-fds.js';
import { reexecAvailable, reexecSelf, spawnSuccessor, type SuccessorOptions } from './exec-image.js';
import { guardedCommand, releaseGuard, STATE_COPY_ENV, writeStateCopy } from './handover-guard.js';
import { dumpDaemon, type Descriptors } from './state-dump.js';
import { markPause, PAUSE_TRACE_ENV } from './pause-trace.js';
import type { StreamVersion } from '../stream/records.js';

/** The stream file the new image reads, as C xenstored names it. */
export function stateFile(rundir: string): string {
  return path.join(rundir, 'state_dump');
}

/** Environment: the descriptor numbers as the old image knew them, in hand-over order. */
export const KEPT_FDS_ENV = 'XENSTORED_SIM_LU_KEPT';
/** Environment: other kept listeners (the sandbox page), as name=fd pairs, old image's numbers. */
export const KEPT_LISTENERS_ENV = 'XENSTORED_SIM_LU_LISTENERS';
/** Environment: the run directory's flock-ed lock descriptor (RunDirLock), old image's number. */
export const KEPT_LOCK_ENV = 'XENSTORED_SIM_LU_LOCK';
/** Environment: how to start the previous image again if the new one cannot restore. */
export const PREVIOUS_IMAGE_ENV = 'XENSTORED_SIM_LU_PREVIOUS';

export interface Image {
  execPath: string;
  /** Arguments after argv[0] (node flags and script first for a JS entry point). */
  args: string[];
}

/**
 * What runs a given "binary": a JavaScript entry point runs under this
 * node (with this process's node flags); anything else is executed as is.
 */
export function imageFor(binary: string, daemonArgs: string[]): Image {
  if (/\.(c|m)?js$/.test(binary)) return { execPath: process.execPath, args: [...process.execArgv, binary, ...daemonArgs] };
  return { execPath: binary, args: daemonArgs };
}

/**
 * The environment for an image this daemon starts, without what only costs
 * start-up time: NODE_EXTRA_CA_CERTS makes every node parse a certificate
 * bundle (50-70 ms here), and the daemon never speaks TLS.
 */
export function imageEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** The image running now, for a fallback. */
export function currentImage(daemonArgs: string[]): Image {
  return { execPath: process.execPath, args: [...process.execArgv, process.argv[1]!, ...daemonArgs] };
}

function descriptors(daemon: LiveUpdateHost): { map: Descriptors; keep: number[]; listeners: string; lock: string } {
  const keep: number[] = [];
  const track = (fd: number | undefined): number => {
    if (fd === undefined) return -1;
    keep.push(fd);
    return fd;
  };
  const safeFd = (h: Parameters<typeof fdOf>[0] | undefined): number | undefined => {
    try {
      return h ? fdOf(h) : undefined;
    } catch {
      return undefined;
    }
  };
  const trackOrNull = (h: Parameters<typeof fdOf>[0] | undefined): number | null => {
    const fd = track(safeFd(h));
    return fd < 0 ? null : fd;
  };
  const map: Descriptors = {
    listening: track(safeFd(daemon.server)),
    socket: (conn) => track(safeFd(daemon.socketOf(conn))),
    guest: (conn) => trackOrNull(daemon.socketOf(conn)),
    domainListener: (domid) => trackOrNull(daemon.domainListener(domid)),
    parked: (socket) => trackOrNull(socket),
  };
  const listeners: string[] = [];
  for (const [name, server] of daemon.keptListeners) {
    const fd = safeFd(server);
    if (fd !== undefined) listeners.push(`${name}=${track(fd)}`);
  }
  const lockFd = daemon.runLock?.fd;
  return { map, keep, listeners: listeners.join(','), lock: lockFd === undefined ? '' : String(track(lockFd)) };
}

export interface UpdateRequest {
  binary: string;
  daemonArgs: string[];
  version: StreamVersion;
  /** Bound on the dry run, and again on the new image's start. */
  timeoutMs: number;
  /** True once the requester gave up (`-a`) while the dry run ran. */
  cancelled(): boolean;
  /** The reply to `-s`, which the new image sends (as C xenstored does). */
  reply: { conn: Connection; frame: Frame };
}

/**
 * Without it the dump inside the pause is this image's second (the dry
 * run's is the first), and V8 has not optimized the dump code yet. One
 * more dump, thrown away while the dry run runs (this image still serves),
 * cut the pause's dump of 10k nodes from 35-47 ms to 12-31 (load 6). Not done
 * for a stream above this size (about 15k nodes): a larger store's spare
 * dump would hold up the requests served during the dry run for longer,
 * and was not measured.
 */
const WARM_DUMP_MAX_BYTES = 2 << 20;

/**
 * Runs the new image with --check-stream on a dump of the current state,
 * given on its stdin; resolves to its complaint, or undefined. The image is
 * started first, so that it boots on another core while this one dumps.
 */
function dryRun(daemon: LiveUpdateHost, image: Image, version: StreamVersion, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const env = imageEnv();
    // The dry run happens while this image serves: it is no part of the pause.
    delete env[PAUSE_TRACE_ENV];
    const child = process.getBuiltinModule('node:child_process').spawn(image.execPath, [...image.args.filter((a) => a !== '-U'), '--check-stream', '-'], { stdio: ['pipe', 'ignore', 'pipe'], env });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(`no answer within ${timeoutMs} ms; killed it`);
    }, timeoutMs);
    const done = (why: string | undefined) => {
      clearTimeout(timer);
      resolve(why);
    };
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (e) => done(e.message));
    child.once('close', (status) => done(status === 0 ? undefined : stderr.trim() || `exit status ${status ?? child.signalCode}`));
    // An image that exits without reading makes this EPIPE; its exit status says why.
    child.stdin.on('error', () => {});
    try {
      const stream = dumpDaemon(daemon, { version });
      child.stdin.end(stream);
      if (stream.length <= WARM_DUMP_MAX_BYTES) setImmediate(() => dumpDaemon(daemon, { version }));
    } catch (e) {
      child.kill('SIGKILL');
      done(`cannot dump the state: ${(e as Error).message}`);
    }
  });
}

/**
 * Checks the new image (while this one keeps serving), then dumps and
 * execs. Resolves to an error text (the reply to `-s`) when the update
 * could not happen; does not return when it did.
 */
export async function reexecUpdate(daemon: LiveUpdateHost, request: UpdateRequest): Promise<string> {
  markPause('update requested');
  // Loads the native addon now, while this image still serves, not in the pause.
  const reexec = reexecAvailable();
  const image = imageFor(request.binary, request.daemonArgs);
  const refused = await dryRun(daemon, image, request.version, request.timeoutMs);
  if (request.cancelled()) return 'Cancellation was requested';
  if (refused !== undefined) {
    daemon.log(`live update: new image refused the state: ${refused}`);
    return 'Error activating new binary.';
  }
  // From here to exec everything happens in one turn: nothing can arrive in between.
  markPause('pause begins');
  const { map, keep, listeners, lock } = descriptors(daemon);
  const extraOutput = new Map([[request.reply.conn, encodeFrame(request.reply.frame)]]);
  const stream = dumpDaemon(daemon, { version: request.version, descriptors: map, includeInFlight: true, extraOutput });
  markPause('dumped');
  const file = stateFile(daemon.options.rundir);
  let copy: number;
  try {
    writePrivateFile(file, stream);
    copy = writeStateCopy(daemon.options.rundir, stream);
    markPause('state written');
  } catch {
    fs.rmSync(file, { force: true });
    return 'Dump state open error';
  }
  const giveUp = (why: string): string => {
    releaseGuard(copy);
    fs.rmSync(file, { force: true });
    daemon.log(`live update: ${why}`);
    return 'Error activating new binary.';
  };
  const kept = [...keep, copy];
  const previous = currentImage(request.daemonArgs);
  const guarded = guardedCommand(image, previous, request.timeoutMs);
  const successor: SuccessorOptions = {
    execPath: guarded.execPath,
    argv: guarded.args,
    keepFds: kept,
    env: imageEnv({ [KEPT_FDS_ENV]: kept.join(','), [KEPT_LISTENERS_ENV]: listeners, [KEPT_LOCK_ENV]: lock, [STATE_COPY_ENV]: '1', [PREVIOUS_IMAGE_ENV]: JSON.stringify(previous) }),
  };
  markPause('exec');
  if (reexec) {
    try {
      reexecSelf(successor);
    } catch (e) {
      return giveUp(`exec failed: ${(e as Error).message}`);
    }
  }
  let pid: number;
  try {
    pid = spawnSuccessor(successor).pid!;
  } catch (e) {
    return giveUp(`could not start the new image: ${(e as Error).message}`);
  }
  daemon.runLock?.handTo(pid);
  daemon.log('live update: handed over to a spawned successor (no re-exec addon); the pid changes');
  process.exit(0);
}
