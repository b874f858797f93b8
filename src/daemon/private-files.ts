/**
 * Files the daemon writes (pid file, dumps, state_dump, traces): owner-only
 * (0600, whatever the umask) and never through a symbolic link, so that a
 * link planted where the daemon writes cannot redirect the write to another
 * file, and nobody else can read the state in it.
 */
import fs from 'node:fs';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = fs.constants;
const OWNER_ONLY = 0o600;

/**
 * `bytes` random bytes from the kernel, in hex, for names nobody can guess.
 * Read from /dev/urandom rather than with node:crypto: loading that module
 * and seeding OpenSSL's generator cost every daemon start about 5 ms and
 * 1 MB of memory, for the few bytes of the socket's staging name.
 */
export function randomHex(bytes: number): string {
  const buf = Buffer.alloc(bytes);
  const fd = fs.openSync('/dev/urandom', O_RDONLY);
  try {
    if (fs.readSync(fd, buf) !== bytes) throw new Error('short read from /dev/urandom');
  } finally {
    fs.closeSync(fd);
  }
  return buf.toString('hex');
}

/**
 * Replaces `file` with a new file holding `data`, at once: it is written
 * under a fresh name beside it (O_EXCL, so the file written is the one just
 * created, not something put there in between) and renamed over `file`.
 * rename(2) replaces a link itself, never its target, and a reader (of the
 * pid file, say) sees the old contents or the new, never an empty file.
 */
export function writePrivateFile(file: string, data: string | Uint8Array): void {
  const fresh = `${file}.${process.pid}.${randomHex(4)}`;
  const fd = fs.openSync(fresh, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, OWNER_ONLY);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(fresh, file);
  } catch (e) {
    fs.rmSync(fresh, { force: true });
    throw e;
  }
}

/** Opens `file` for appending (a log), creating it owner-only; refuses a symbolic link. */
export function openPrivateAppend(file: string): number {
  return fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, OWNER_ONLY);
}

/** Appends `text` to `file` (see openPrivateAppend). */
export function appendPrivateFile(file: string, text: string): void {
  const fd = openPrivateAppend(file);
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads `file`, refusing a symbolic link. */
export function readFileNoFollow(file: string): Buffer {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
