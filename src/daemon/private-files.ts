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
 * Replaces `file` with a new file holding `data`. What was there is unlinked
 * (a link itself, never its target); O_EXCL then makes sure the file written
 * is the one just created, not something put there in between.
 */
export function writePrivateFile(file: string, data: string | Uint8Array): void {
  removeUnlessDirectory(file);
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, OWNER_ONLY);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
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

function removeUnlessDirectory(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    // ENOENT: nothing to replace. EISDIR: a directory, which open then refuses.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR') throw e;
  }
}
