/**
 * What live update needs from a running daemon, and no more: the store, the
 * connections and their sockets (to dump them and keep them open), the
 * CONTROL commands it adds, and a few actions. The Daemon class provides
 * it; live update never reaches for the rest of the daemon.
 */
import type net from 'node:net';
import type { ControlExtension } from '../daemon/control.js';
import type { DaemonOptions } from '../daemon/options.js';
import type { ParkedGuest } from '../daemon/parked-guests.js';
import type { RunDirLock } from '../daemon/run-lock.js';
import type { Connection } from '../protocol/connection.js';
import type { Frame } from '../protocol/frame.js';
import type { Requester } from '../store/requester.js';
import type { Store } from '../store/store.js';

export interface LiveUpdateHost {
  readonly store: Store;
  readonly options: DaemonOptions;
  /** Every client's connection, by the client's serial. */
  readonly connections: ReadonlyMap<number, Connection>;
  /** Where CONTROL commands that live in live update (dump, export-domain, …) are installed. */
  readonly controlExtensions: Map<string, ControlExtension>;
  /** The listening socket, if the daemon listens. */
  readonly server: net.Server | undefined;
  /** Listening sockets besides XenStore's (the sandbox page) that a live update carries over, by name. */
  readonly keptListeners: ReadonlyMap<string, net.Server>;
  socketOf(conn: Connection): net.Socket | undefined;
  /** The daemon's hold on its run directory, which a live update keeps. */
  readonly runLock: RunDirLock | undefined;
  /** Guest clients waiting for their domain's ring (not yet connections), in queue order. */
  parkedGuestsSaved(): ParkedGuest[];
  domainListener(domid: number): net.Server | undefined;
  /** A ring connection was (re)set, as by INTRODUCE: discard its I/O, make sure its socket exists. */
  connectionReset(client: Requester): void;
  /** Queues a reply frame on a connection. */
  reply(conn: Connection, frame: Frame): void;
  /** Writes everything queued. */
  flush(): void;
  log(line: string): void;
}
