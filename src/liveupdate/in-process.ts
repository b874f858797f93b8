/**
 * Live update inside one process: dump the daemon, build a fresh one from
 * the stream and hand it the very same socket objects. It takes the same
 * dump → restore path as a re-exec, so tests exercise the stream in full
 * without paying for a process start.
 */
import type net from 'node:net';
import type { Daemon } from '../daemon/daemon.js';
import type { Connection } from '../protocol/connection.js';
import { dumpDaemon } from './state-dump.js';
import { restoreDaemon, type SocketSource } from './state-restore.js';

/** Connections in the order a dump writes them (client creation order). */
export function dumpedConnections(daemon: Daemon): Connection[] {
  const out: Connection[] = [];
  for (const client of daemon.store.clients.values()) {
    const conn = daemon.connections.get(client.serial);
    if (conn) out.push(conn);
  }
  return out;
}

export function liveUpdateInProcess(old: Daemon, log?: (line: string) => void): Daemon {
  // Bytes Node still buffers stay in the very socket objects we hand over.
  const stream = dumpDaemon(old, { version: 2, includeInFlight: false });
  const kept = dumpedConnections(old).map((conn) => old.socketOf(conn));
  const listeners = new Map([...old.store.domains.all()].map((d) => [d.domid, old.domainListener(d.domid)]));
  const server = old.server;
  const parked = old.parkedGuestsSaved().map((p) => p.socket);
  const sockets: SocketSource = {
    listening: () => server,
    socket: (_r, i) => resumed(kept[i]),
    guest: (_s, i) => resumed(kept[i]),
    domainListener: (domid) => listeners.get(domid),
    parked: (_p, i) => parked[i],
  };
  old.release();
  const { daemon, replay } = restoreDaemon(old.options, stream, sockets, log);
  daemon.runLock = old.runLock;
  old.runLock = undefined;
  replay();
  return daemon;
}

function resumed(socket: net.Socket | undefined): net.Socket | undefined {
  socket?.resume();
  return socket;
}
