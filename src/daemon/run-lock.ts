/**
 * One daemon per run directory: a live daemon holds <rundir>/xenstored.pid
 * (which names its pid) for its whole life, across live updates, and a
 * second daemon started on the same run directory is refused before it
 * touches anything there. Two ways, by what this build has:
 *
 *  - flock(2), through the native addon: the lock belongs to the open file
 *    and dies with the last process holding it, whatever way it ends
 *    (SIGKILL included), so it can never be stale. It survives a live
 *    update because the descriptor is handed over with the sockets (exec
 *    keeps it; a spawned successor shares it).
 *  - Without the addon, the file itself is the lock: it is linked into
 *    place complete (link(2) fails when the name is taken), and one naming
 *    a live process is never taken. One whose process is gone is stale and
 *    replaced, unless a daemon still accepts on the socket (a live update's
 *    spawned successor that has not rewritten the pid yet). Weaker: a pid
 *    reused by an unrelated process makes a stale file look held (the
 *    message says to remove it), and two daemons replacing the same stale
 *    file at the same instant can both get past it; the socket's own
 *    link(2) then still lets only one of them serve.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadExecAddon, markCloexec } from '../liveupdate/exec-image.js';
import { readFileNoFollow } from './private-files.js';
import { CHOOSE_ANOTHER, lstatIfAny, RunDirError } from './run-dir.js';

const { O_RDWR, O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } = fs.constants;

/** The run directory's pid file, which is also its lock. */
export function runLockFile(rundir: string): string {
  return path.join(rundir, 'xenstored.pid');
}

/** A stale or contended lock is looked at again this often, at most. */
const ATTEMPTS = 5;

/** Made by {@link RunDirLock.acquire} or {@link RunDirLock.inherit}. */
export class RunDirLock {
  constructor(
    readonly file: string,
    /** The flock-ed descriptor (handed over by a live update); none for the pid-file lock. */
    readonly fd: number | undefined,
    private ino: number,
  ) {}

  private released = false;

  /**
   * Takes the run directory's lock, or throws a RunDirError naming the
   * daemon that holds it. `accepting` says whether a daemon serves the
   * socket (for the pid-file lock's stale check).
   */
  static async acquire(rundir: string, accepting: () => Promise<boolean>): Promise<RunDirLock> {
    const file = runLockFile(rundir);
    const tryLock = loadExecAddon()?.tryLock;
    for (let i = 0; i < ATTEMPTS; i++) {
      const lock = typeof tryLock === 'function' ? await flockOnce(file, tryLock, accepting) : await pidFileOnce(file, accepting);
      if (lock) return lock;
    }
    throw new RunDirError(`could not lock ${file}: it keeps changing under this daemon; ${CHOOSE_ANOTHER}`);
  }

  /**
   * The lock a live update's predecessor held: the flock-ed descriptor it
   * handed over, or else the pid file, rewritten with this process's pid
   * (a spawned successor has a new one).
   */
  static inherit(rundir: string, fd: number | undefined): RunDirLock {
    const file = runLockFile(rundir);
    if (fd !== undefined) {
      markCloexec([fd]);
      writePid(fd);
      return new RunDirLock(file, fd, fs.fstatSync(fd).ino);
    }
    const ino = linkPidFile(file, { replace: true });
    return new RunDirLock(file, undefined, ino);
  }

  /** Names `pid` in the pid file: a spawned successor's, before this process exits. */
  handTo(pid: number): void {
    if (this.fd !== undefined) writePid(this.fd, pid);
    else this.ino = linkPidFile(this.file, { replace: true, pid });
  }

  /** Removes the pid file (if it is still this lock's) and lets the lock go; once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (lstatIfAny(this.file)?.ino === this.ino) fs.rmSync(this.file, { force: true });
    if (this.fd !== undefined) fs.closeSync(this.fd);
  }
}

function heldBy(file: string, pid: string): RunDirError {
  const rundir = path.dirname(file);
  return new RunDirError(`a daemon${pid ? ` (pid ${pid})` : ''} is already running in ${rundir}: it holds ${file}. Stop it first, or ${CHOOSE_ANOTHER}`);
}

async function flockOnce(file: string, tryLock: (fd: number) => boolean, accepting: () => Promise<boolean>): Promise<RunDirLock | undefined> {
  const fd = fs.openSync(file, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
  let kept = false;
  try {
    if (!tryLock(fd)) throw heldBy(file, pidIn(file));
    // A holder that was just letting go removed the file before closing it:
    // the lock taken is on a file nobody else will look at. Start again.
    const { ino } = fs.fstatSync(fd);
    if (lstatIfAny(file)?.ino !== ino) return undefined;
    // A daemon without the addon holds the file itself, not a flock: it is
    // serving if its pid is alive and the socket accepts (a pid merely reused
    // since a holder was killed does not serve the socket).
    const pid = pidIn(file);
    if (pid && Number(pid) !== process.pid && alive(pid) && (await accepting())) throw heldBy(file, pid);
    writePid(fd);
    kept = true;
    return new RunDirLock(file, fd, ino);
  } finally {
    if (!kept) fs.closeSync(fd);
  }
}

async function pidFileOnce(file: string, accepting: () => Promise<boolean>): Promise<RunDirLock | undefined> {
  const ino = linkPidFile(file, { replace: false });
  if (ino !== undefined) return new RunDirLock(file, undefined, ino);
  const found = lstatIfAny(file);
  if (!found) return undefined;
  const pid = pidIn(file);
  if (alive(pid) || (await accepting())) throw heldBy(file, pid);
  // Stale. Only the file judged so: one another daemon has linked since is new.
  if (lstatIfAny(file)?.ino === found.ino) fs.rmSync(file, { force: true });
  return undefined;
}

/**
 * Puts a complete pid file at `file` through a fresh name beside it: by
 * link(2), which fails when the name is taken (undefined then), or with
 * `replace`, by rename(2). Returns the file's inode.
 */
function linkPidFile(file: string, how: { replace: false; pid?: number }): number | undefined;
function linkPidFile(file: string, how: { replace: true; pid?: number }): number;
function linkPidFile(file: string, how: { replace: boolean; pid?: number }): number | undefined {
  const fresh = `${file}.${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(fresh, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let ino: number;
  try {
    writePid(fd, how.pid);
    ino = fs.fstatSync(fd).ino;
  } finally {
    fs.closeSync(fd);
  }
  try {
    if (how.replace) fs.renameSync(fresh, file);
    else fs.linkSync(fresh, file);
    return ino;
  } catch (e) {
    if (!how.replace && (e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  } finally {
    fs.rmSync(fresh, { force: true });
  }
}

/** Written over the old text, then cut: a reader never finds it empty, and a live update by exec (same pid) changes nothing. */
function writePid(fd: number, pid = process.pid): void {
  const text = Buffer.from(`${pid}\n`);
  fs.writeSync(fd, text, 0, text.length, 0);
  fs.ftruncateSync(fd, text.length);
}

/** The pid a pid file names ('' when it names none, or is gone). */
function pidIn(file: string): string {
  try {
    const text = readFileNoFollow(file).toString('latin1').trim();
    return /^\d{1,10}$/.test(text) ? text : '';
  } catch {
    return '';
  }
}

/** Is there a process `pid` (of any user)? */
function alive(pid: string): boolean {
  if (!pid || Number(pid) <= 0) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

