/**
 * The new image's side of a live update (started with -U): read the state
 * file, take over the descriptors the old image kept open, restore, and
 * carry on. A stream this image cannot restore sends control back to the
 * previous image with the same stream, so clients are never left without
 * a daemon.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Daemon } from '../daemon/daemon.js';
import type { DaemonOptions } from '../daemon/options.js';
import { readFileNoFollow } from '../daemon/private-files.js';
import { RunDirLock } from '../daemon/run-lock.js';
import { adoptConnectedSocket } from './adopt-fds.js';
import { INHERITED_FDS_ENV, reexecAvailable, reexecSelf, spawnSuccessor, takeInheritedFds } from './exec-image.js';
import { FALLBACK_ENV, inheritedStateCopy, readStateCopy, releaseGuard } from './handover-guard.js';
import { KEPT_FDS_ENV, KEPT_LISTENERS_ENV, KEPT_LOCK_ENV, PREVIOUS_IMAGE_ENV, stateFile, type Image } from './reexec-update.js';
import { restoreDaemon, type SocketSource } from './state-restore.js';
import { markNodeStart, markPause } from './pause-trace.js';

function listenOnFd(fd: number): net.Server {
  const server = net.createServer();
  server.listen({ fd });
  return server;
}

/** Restores the state a live update left; returns the running daemon. */
export function resumeAfterUpdate(options: DaemonOptions, log: (line: string) => void): Daemon {
  markNodeStart();
  markPause('modules loaded');
  const file = stateFile(options.rundir);
  const kept = (process.env[KEPT_FDS_ENV] ?? '').split(',').filter(Boolean).map(Number);
  const inherited = takeInheritedFds();
  const fdFor = (old: number | null | undefined): number | undefined => {
    const i = old === null || old === undefined ? -1 : kept.indexOf(old);
    return i < 0 ? undefined : inherited[i];
  };
  const sockets: SocketSource = {
    listening: (r) => {
      const fd = fdFor(r.socketFd);
      return fd === undefined ? undefined : listenOnFd(fd);
    },
    socket: (r) => {
      const fd = r.connType === 'socket' ? fdFor(r.socketFd) : undefined;
      return fd === undefined ? undefined : adoptConnectedSocket(fd);
    },
    guest: (s) => {
      const fd = fdFor(s.guestFd);
      return fd === undefined ? undefined : adoptConnectedSocket(fd);
    },
    domainListener: (_domid, s) => {
      const fd = fdFor(s?.listenerFd);
      return fd === undefined ? undefined : listenOnFd(fd);
    },
    parked: (p) => {
      const fd = fdFor(p.fd);
      return fd === undefined ? undefined : adoptConnectedSocket(fd);
    },
  };
  // A previous image started again reads the copy the old image kept: state_dump may be what failed.
  const copy = inheritedStateCopy(inherited);
  const fromCopy = copy !== undefined && process.env[FALLBACK_ENV] === '1';
  const source = fromCopy ? 'the kept copy of the state' : file;
  let restored;
  try {
    // Descriptors are adopted only at the very end, so a fallback finds them untouched.
    const stream = fromCopy ? readStateCopy(copy) : readFileNoFollow(file);
    markPause('state read');
    restored = restoreDaemon(options, stream, sockets, log);
  } catch (e) {
    return fallBack(`cannot restore ${source}: ${(e as Error).message}`, kept, inherited, log);
  }
  const { daemon, replay } = restored;
  fs.rmSync(file, { force: true });
  for (const pair of (process.env[KEPT_LISTENERS_ENV] ?? '').split(',').filter(Boolean)) {
    const [name, old] = pair.split('=');
    const fd = fdFor(Number(old));
    if (name && fd !== undefined) daemon.inheritedListeners.set(name, fd);
  }
  if (copy !== undefined) releaseGuard(copy);
  const lockFd = process.env[KEPT_LOCK_ENV] ? fdFor(Number(process.env[KEPT_LOCK_ENV])) : undefined;
  daemon.runLock = RunDirLock.inherit(options.rundir, lockFd);
  daemon.writePidFile();
  delete process.env[KEPT_FDS_ENV];
  delete process.env[KEPT_LISTENERS_ENV];
  delete process.env[KEPT_LOCK_ENV];
  delete process.env[PREVIOUS_IMAGE_ENV];
  delete process.env[FALLBACK_ENV];
  log(`live update: restored ${daemon.connections.size} connections${fromCopy ? ' into the previous image' : ''}`);
  replay();
  daemon.flush();
  markPause('resumed');
  return daemon;
}

function fallBack(why: string, kept: number[], inherited: number[], log: (line: string) => void): never {
  log(`live update: ${why}`);
  const previous = process.env[PREVIOUS_IMAGE_ENV];
  if (!previous || process.env[FALLBACK_ENV]) {
    log('live update: no previous image to fall back to; exiting');
    process.exit(1);
  }
  const image = JSON.parse(previous) as Image;
  log(`live update: falling back to the previous image ${image.args.join(' ')}`);
  const env: NodeJS.ProcessEnv = { ...process.env, [FALLBACK_ENV]: '1', [KEPT_FDS_ENV]: kept.join(',') };
  delete env[INHERITED_FDS_ENV];
  // The previous image has not restored the stream yet: it must validate before taking the descriptors.
  const successor = { execPath: image.execPath, argv: image.args, keepFds: inherited, env };
  if (reexecAvailable()) reexecSelf(successor);
  spawnSuccessor(successor);
  process.exit(0);
}
