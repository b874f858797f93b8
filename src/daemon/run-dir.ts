/**
 * The run directory and the sockets in it, made safe before the daemon
 * binds. The run directory must be this user's alone: another user who can
 * write there could swap the socket for their own (and read what dom0
 * writes) or plant symbolic links where the daemon creates and removes
 * files. A socket path must fit a Unix socket address, and a live daemon's
 * socket is never taken over: only a stale one is removed.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DOMID_FIRST_RESERVED } from '../wire/vocabulary.js';
import { randomHex } from './private-files.js';

/** sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;
/** The longest name a guest domain's socket gets: the highest domid a guest can have. */
const LONGEST_DOMAIN_SOCKET_NAME = String(DOMID_FIRST_RESERVED - 1);

/** A run directory or socket path the daemon will not use; the message says what to do. */
export class RunDirError extends Error {}

export const CHOOSE_ANOTHER = 'choose another run directory (XENSTORED_RUNDIR) or socket (--socket)';

function checkSocketPathLength(socketPath: string, bound = socketPath): void {
  const bytes = Buffer.byteLength(bound);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    const staged = bound === socketPath ? '' : ` while it is bound (under the temporary name ${bound})`;
    throw new RunDirError(`socket path ${socketPath} is ${bytes} bytes long${staged}, but a Unix socket path can have at most ${MAX_SOCKET_PATH_BYTES}: ${CHOOSE_ANOTHER} with a shorter path`);
  }
}

/**
 * Where the main socket is bound before it is linked to its path: beside
 * it, so that link(2) works, under a random name as long as "socket", so
 * that the usual layout needs no shorter run directory.
 */
function stagingPath(socketPath: string): string {
  return path.join(path.dirname(socketPath), `.${randomHex(3).slice(1)}`);
}

/** Both the main socket's path and the one it is bound at fit a Unix socket address. */
function checkMainSocketPaths(socketPath: string): void {
  checkSocketPathLength(socketPath);
  checkSocketPathLength(socketPath, stagingPath(socketPath));
}

const uid = () => process.geteuid?.() ?? 0;
const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/**
 * Creates `dir` owner-only (0700) if it is missing, and refuses one that is
 * a symbolic link, belongs to another user or can be written by others, or
 * whose parents another user could rename it away from under.
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const problem = st.isSymbolicLink() ? 'is a symbolic link'
    : !st.isDirectory() ? 'is not a directory'
    : st.uid !== uid() ? `belongs to uid ${st.uid}, not to this user (uid ${uid()})`
    : st.mode & 0o022 ? `can be written by other users (mode ${octal(st.mode)})`
    : undefined;
  if (problem) throw new RunDirError(`run directory ${dir} ${problem}: another user could take over the daemon's files there. Remove it, or ${CHOOSE_ANOTHER}`);
  checkParents(path.dirname(fs.realpathSync(dir)));
}

/**
 * Every directory from `dir` up to / must be root's or this user's, and
 * writable by others only with the sticky bit (as /tmp), which stops them
 * renaming or removing what is not theirs.
 */
function checkParents(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    if ((st.uid !== 0 && st.uid !== uid()) || (st.mode & 0o022 && !(st.mode & 0o1000))) {
      throw new RunDirError(`directory ${d} (uid ${st.uid}, mode ${octal(st.mode)}) can be changed by another user, who could replace the daemon's files below it: ${CHOOSE_ANOTHER} elsewhere`);
    }
    if (d === path.dirname(d)) return;
  }
}

export function lstatIfAny(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Does some process accept connections on this socket? */
export function accepting(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createConnection(socketPath, () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else if (e.code === 'EAGAIN') resolve(true); // listening, its backlog full
      else reject(new RunDirError(`cannot tell whether a daemon is listening on ${socketPath} (${e.code}): remove it if it is stale, or ${CHOOSE_ANOTHER}`));
    });
  });
}

/**
 * Makes `socketPath` free to bind: nothing is there, or a stale socket
 * (nobody accepts on it), which is removed. A live daemon's socket, and
 * anything that is not a socket, are left alone and refused.
 */
export async function claimSocketPath(socketPath: string): Promise<void> {
  const found = lstatIfAny(socketPath);
  if (!found) return;
  if (!found.isSocket()) {
    throw new RunDirError(`${socketPath} exists and is not a socket; it is left alone: move it away, or ${CHOOSE_ANOTHER}`);
  }
  if (await accepting(socketPath)) {
    throw new RunDirError(`a daemon is already listening on ${socketPath}: stop it first, or ${CHOOSE_ANOTHER}`);
  }
  // Only the socket found stale: one that another daemon starting now has bound since is a new file.
  if (lstatIfAny(socketPath)?.ino === found.ino) fs.unlinkSync(socketPath);
}

/** Removes the socket file at `socketPath` on the way out, and nothing else. */
export function removeSocketFile(socketPath: string): void {
  if (lstatIfAny(socketPath)?.isSocket()) fs.unlinkSync(socketPath);
}

/**
 * Listens on `socketPath` with the socket owner-only, srw------- as C
 * xenstored's, whatever the umask: bound under umask 077 (the bind happens
 * inside listen(), synchronously, so the path exists once this returns),
 * then chmod-ed for where the umask cannot be changed (worker threads).
 * Errors after that are logged under `name`.
 */
export function listenOwnerOnly(server: net.Server, socketPath: string, log: (line: string) => void, name = socketPath): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? takenWhileStarting(name) : e));
    let previous: number | undefined;
    try {
      previous = process.umask(0o077);
    } catch {
      // A worker thread: the chmod below does it, a moment later.
    }
    try {
      server.listen({ path: socketPath, backlog: 511 }, () => {
        try {
          fs.chmodSync(socketPath, 0o600);
        } catch (e) {
          server.close();
          reject(e as Error);
          return;
        }
        // Later errors are accept(2)'s (EMFILE...): the daemon carries on.
        server.on('error', (e) => log(`${name}: ${e.message}`));
        resolve();
      });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}

const takenWhileStarting = (socketPath: string) => new RunDirError(`${socketPath} was taken while this daemon started: ${CHOOSE_ANOTHER}`);

/**
 * The main socket: listening under a staging name first, and only then
 * linked to its path, because link(2) fails when the path is taken. Another
 * daemon starting at the same moment never finds the socket bound but not
 * yet listening, which its probe would take for a stale socket and remove.
 */
export async function listenMainSocket(server: net.Server, socketPath: string, log: (line: string) => void): Promise<void> {
  const staging = stagingPath(socketPath);
  await listenOwnerOnly(server, staging, log, socketPath);
  try {
    fs.linkSync(staging, socketPath);
  } catch (e) {
    server.close(); // libuv removes the staging name as it closes
    throw (e as NodeJS.ErrnoException).code === 'EEXIST' ? takenWhileStarting(socketPath) : e;
  }
  fs.unlinkSync(staging);
}

/**
 * Checks and prepares everything the daemon will bind and write before it
 * binds: the socket paths' lengths (the main socket and the longest guest
 * domain socket), the run directory and the socket's directory. The socket
 * path itself is claimed (claimSocketPath) once the run directory is locked.
 */
export function prepareRunDir(rundir: string, socketPath: string, domainDir: string): void {
  checkMainSocketPaths(socketPath);
  checkSocketPathLength(path.join(domainDir, LONGEST_DOMAIN_SOCKET_NAME));
  ensurePrivateDir(rundir);
  const socketDir = path.dirname(socketPath);
  if (socketDir !== rundir) {
    fs.mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    checkParents(fs.realpathSync(socketDir));
  }
}
