/**
 * Guards a live update against a new image that passed the dry run but
 * then exits, hangs or cannot restore the real state. Just before exec the
 * old image writes a second copy of the state into an unlinked file (so
 * nothing that damages <rundir>/state_dump reaches it) and starts a guard:
 * a small bash loop holding a copy of every kept descriptor and of that
 * file. The image that restores empties the copy, which tells the guard
 * all is well. If the image dies first, or has not restored when the `-t`
 * timeout runs out, the guard kills it and execs the previous image on the
 * copy with the same descriptors (a new PID; the pid file is rewritten).
 *
 * bash rather than node: it starts in about a millisecond, on the core the
 * new image is not using.
 */
import fs from 'node:fs';
import path from 'node:path';
import { INHERITED_FDS_ENV } from './exec-image.js';

/** Environment: the last kept descriptor is the state copy. */
export const STATE_COPY_ENV = 'XENSTORED_SIM_LU_STATE_COPY';
/** How often the guard looks at the new image. */
const POLL_SECONDS = 0.05;

/**
 * $1 the image's pid, $2 polls before the timeout, $3 the copy's descriptor,
 * then the previous image's command. The subshell runs on after the outer
 * shell exits, so the caller never waits and no zombie is left behind.
 */
const GUARD_SCRIPT = `
pid=$1 polls=$2 copy=$3
shift 3
alive() {
  local s
  read -r s 2>/dev/null < "/proc/$pid/stat" || return 1
  s=\${s##*) }
  [ "\${s%% *}" != Z ]
}
(
  n=0 why=
  while [ -s "/proc/self/fd/$copy" ]; do
    if ! alive; then why='exited'; break; fi
    if [ "$n" -ge "$polls" ]; then
      kill -STOP "$pid" 2>/dev/null
      if [ ! -s "/proc/self/fd/$copy" ]; then kill -CONT "$pid"; exit 0; fi
      kill -KILL "$pid" 2>/dev/null
      why='did not restore in time; killed it'
      break
    fi
    sleep ${POLL_SECONDS}
    n=$((n + 1))
  done
  [ -n "$why" ] || exit 0
  echo "xenstored-sim: live update: the new image $why; starting the previous image" >&2
  exec "$@"
) &
`;

/**
 * Writes `stream` to a new file in `rundir` that is unlinked at once; returns
 * its descriptor (close-on-exec, as Node opens everything).
 */
export function writeStateCopy(rundir: string, stream: Buffer): number {
  const file = path.join(rundir, 'state_dump.copy');
  fs.rmSync(file, { force: true });
  const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.unlinkSync(file);
    fs.writeSync(fd, stream, 0, stream.length, 0);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

export interface GuardRequest {
  /** The process that becomes the new image. */
  pid: number;
  timeoutMs: number;
  /** Descriptors the previous image needs, the state copy last. */
  keepFds: number[];
  /** The previous image's command and environment. */
  execPath: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Starts the guard; it is running when this returns. Throws if bash cannot run. */
export function startGuard(request: GuardRequest): void {
  const first = 3;
  const copy = first + request.keepFds.length - 1;
  const env = { ...request.env, [INHERITED_FDS_ENV]: request.keepFds.map((_, i) => first + i).join(','), [STATE_COPY_ENV]: '1' };
  const polls = Math.ceil(request.timeoutMs / 1000 / POLL_SECONDS);
  const result = process.getBuiltinModule('node:child_process').spawnSync('/bin/bash', ['-c', GUARD_SCRIPT, 'xenstored-sim-lu-guard', String(request.pid), String(polls), String(copy), request.execPath, ...request.args], {
    env,
    stdio: ['ignore', 'inherit', 'inherit', ...request.keepFds],
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`the live-update guard could not start (status ${result.status})`);
}

/** The state copy among the inherited descriptors, when the predecessor left one. */
export function inheritedStateCopy(inherited: readonly number[]): number | undefined {
  return process.env[STATE_COPY_ENV] === '1' ? inherited.at(-1) : undefined;
}

/** Reads the whole state copy, whatever its file position. */
export function readStateCopy(fd: number): Buffer {
  const out = Buffer.allocUnsafe(fs.fstatSync(fd).size);
  for (let at = 0; at < out.length; ) {
    const n = fs.readSync(fd, out, at, out.length - at, at);
    if (n === 0) throw new Error(`the state copy ends after ${at} of ${out.length} bytes`);
    at += n;
  }
  return out;
}

/** Restored: empties the copy (the guard's sign to stand down) and closes it. */
export function releaseGuard(fd: number): void {
  fs.ftruncateSync(fd, 0);
  fs.closeSync(fd);
  delete process.env[STATE_COPY_ENV];
}
