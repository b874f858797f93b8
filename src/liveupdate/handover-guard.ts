/**
 * Guards a live update against a new image that passed the dry run but
 * then exits, hangs or cannot restore the real state. Just before exec the
 * old image writes a second copy of the state into an unlinked file (so
 * nothing that damages <rundir>/state_dump reaches it), and what it execs
 * is not the new image itself but a small /bin/sh wrapper that forks the
 * guard and then execs the new image in the same process (same pid, same
 * descriptors). The guard is a shell loop holding a copy of every kept
 * descriptor and of that file. The image that restores empties the copy,
 * which tells the guard all is well. If the image dies first, or has not
 * restored when the `-t` timeout runs out, the guard kills it and execs the
 * previous image on the copy with the same descriptors (a new PID; the pid
 * file is rewritten).
 *
 * A shell rather than node: it starts in about a millisecond. Forked by the
 * wrapper rather than spawned by the old image: forking node's large
 * process and waiting for a shell there cost 5-50 ms of the pause; the
 * wrapper's exec and fork of a small shell cost about one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { INHERITED_FDS_ENV } from './exec-image.js';
import type { Image } from './reexec-update.js';

/** Environment: the last kept descriptor is the state copy. */
export const STATE_COPY_ENV = 'XENSTORED_SIM_LU_STATE_COPY';
/** Environment: set in a previous image started again, which has nothing to fall back to. */
export const FALLBACK_ENV = 'XENSTORED_SIM_LU_FALLBACK';
/** How often the guard looks at the new image. */
const POLL_SECONDS = 0.05;

/**
 * $1 polls before the timeout, $2 how many words of the rest are the new
 * image's command; the previous image's command follows them. The state
 * copy is the last inherited descriptor. The guard is forked twice so that
 * it is nobody's child once the wrapper has become the new image (no
 * zombie is left behind), and it watches the wrapper's own pid ($$), which
 * is the new image's. Its stdin (and so a fallback image's) is
 * /dev/null: the guard reads nothing.
 */
const GUARD_SCRIPT = `
polls=$1 words=$2
shift 2
copy=\${${INHERITED_FDS_ENV}##*,}
pid=$$
alive() {
  read -r s 2>/dev/null < "/proc/$pid/stat" || return 1
  s=\${s##*) }
  [ "\${s%% *}" != Z ]
}
( (
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
  shift "$words"
  ${FALLBACK_ENV}=1 exec "$@"
) < /dev/null & )
i=0
for word do
  [ "$i" -lt "$words" ] && set -- "$@" "$word"
  i=$((i + 1))
done
shift "$i"
exec "$@"
`;

/**
 * The command that runs `image` with a guard beside it, which starts
 * `previous` if the image fails. Its environment must hold
 * {@link STATE_COPY_ENV} and the inherited descriptors, the copy last.
 */
export function guardedCommand(image: Image, previous: Image, timeoutMs: number): Image {
  const polls = Math.ceil(timeoutMs / 1000 / POLL_SECONDS);
  const newImage = [image.execPath, ...image.args];
  return {
    execPath: '/bin/sh',
    args: ['-c', GUARD_SCRIPT, 'xenstored-sim-lu-guard', String(polls), String(newImage.length), ...newImage, previous.execPath, ...previous.args],
  };
}

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
