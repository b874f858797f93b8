/**
 * What startSim (in process) and spawnSim (child process) share: the
 * options, turned into the command line so that both take the CLI's path,
 * and the handle built over a daemon's few primitives (dump, live update,
 * close), so that clients, guests and snapshots work the same on both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XsClient } from '../client/client.js';
import { isXsError } from '../client/errors.js';
import type { XenVersion } from '../store/compat.js';
import type { QuotaName } from '../store/quotas.js';
import { snapshotOfStream, type Snapshot, type SnapshotOptions } from './snapshot.js';

export interface SimOptions {
  /** Behave like C xenstored 4.17 or current upstream (`--compat`, default 'master'). */
  compat?: XenVersion;
  /** Per-domain quotas (`-Q name=N`); 0 means no limit. */
  quotas?: Partial<Record<QuotaName, number>>;
  /** Domains exist only once created with CONTROL `domain create` (`--explicit-domains`). */
  explicitDomains?: boolean;
  /** Give a dead domain's nodes to dom0 instead of deleting them (`-K`). */
  keepOrphans?: boolean;
  /** The main socket (default `<rundir>/socket`). */
  socketPath?: string;
  /** Further command-line arguments, as the `xenstored-sim` bin takes them. */
  args?: string[];
  /** Where the daemon logs (default: nowhere for startSim, kept for `stderr()` for spawnSim). */
  log?: (line: string) => void;
}

export interface SimHandle {
  /** The main socket: point XENSTORED_PATH or XsClient.connect here. */
  readonly path: string;
  /** The private run directory (removed by stop()). */
  readonly rundir: string;
  /** A new client connected as dom0 (closed by stop()). */
  client(): Promise<XsClient>;
  /**
   * A new client connected as guest `domid`: introduces the domain first if
   * it is not (creating `/local/domain/<domid>`, owned by the guest, when
   * absent, as a toolstack does). One guest client per domain at a time.
   */
  guest(domid: number): Promise<XsClient>;
  /** A live update through the same dump -> restore path the daemon always takes; every client stays connected. */
  liveUpdate(): Promise<void>;
  /** The whole state as a migration stream (version 2). */
  dump(): Promise<Buffer>;
  /** Equal to snapshot(await dump()) (in process, built without the stream). */
  snapshot(options?: SnapshotOptions): Promise<Snapshot>;
  /** Closes the clients, stops the daemon, removes the run directory. */
  stop(): Promise<void>;
}

/** The options as `xenstored-sim` arguments. */
export function simArgs(options: SimOptions): string[] {
  const args: string[] = [];
  if (options.compat) args.push('--compat', options.compat);
  for (const [name, value] of Object.entries(options.quotas ?? {})) args.push('-Q', `${name}=${value}`);
  if (options.explicitDomains) args.push('--explicit-domains');
  if (options.keepOrphans) args.push('--keep-orphans');
  if (options.socketPath) args.push('--socket', options.socketPath);
  return [...args, ...(options.args ?? [])];
}

/** A fresh run directory with a short path (AF_UNIX socket paths end at 107 bytes). */
export function makeRundir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-sim-'));
}

/** What a daemon, in process or not, has to provide for a handle. */
export interface SimDaemonPrimitives {
  path: string;
  rundir: string;
  /** dump() asks over a connection of its own, which the stream then holds as its newest connection. */
  dumpHasRequester?: boolean;
  dump(): Promise<Buffer>;
  /** The snapshot without a dump, when the daemon's state is at hand (equal to the dump's). */
  snapshot?(options?: SnapshotOptions): Snapshot;
  liveUpdate(): Promise<void>;
  close(): Promise<void>;
}

const DOMAIN_PORT_BASE = 1;

/** Runs `work` on a short-lived dom0 connection of its own. */
export async function withConnection<T>(socketPath: string, work: (xs: XsClient) => Promise<T>): Promise<T> {
  const xs = await XsClient.connect(socketPath);
  try {
    return await work(xs);
  } finally {
    await xs.close();
  }
}

/**
 * What a toolstack does for a guest: INTRODUCE, and its home node owned by
 * it. INTRODUCE comes first so that a refused one (a domain that does not
 * exist) leaves nothing behind.
 */
async function introduceGuest(xs: XsClient, domid: number): Promise<void> {
  if (await xs.isDomainIntroduced(domid)) return;
  await xs.introduce(domid, 0, DOMAIN_PORT_BASE + domid);
  const home = `/local/domain/${domid}`;
  const absent = await xs.getPerms(home).then(
    () => false,
    (e: unknown) => {
      if (isXsError(e, 'ENOENT')) return true;
      throw e;
    },
  );
  if (absent) {
    await xs.write(home, '');
    await xs.setPerms(home, [`n${domid}`]);
  }
}

export function makeHandle(daemon: SimDaemonPrimitives): SimHandle {
  const clients = new Set<XsClient>();
  const track = async (socketPath: string): Promise<XsClient> => {
    const client = await XsClient.connect(socketPath);
    clients.add(client);
    client.once('close', () => clients.delete(client));
    return client;
  };
  let stopping: Promise<void> | undefined;
  return {
    path: daemon.path,
    rundir: daemon.rundir,
    client: () => track(daemon.path),
    async guest(domid) {
      // On a connection of its own, closed again, so that it is not in later snapshots.
      await withConnection(daemon.path, (xs) => introduceGuest(xs, domid));
      return track(path.join(daemon.rundir, 'domain', String(domid)));
    },
    liveUpdate: () => daemon.liveUpdate(),
    dump: () => daemon.dump(),
    async snapshot(options) {
      if (daemon.snapshot) return daemon.snapshot(options);
      const snapshot = snapshotOfStream(await daemon.dump(), options);
      if (daemon.dumpHasRequester) snapshot.connections.pop();
      return snapshot;
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all([...clients].map((c) => c.close()));
        await daemon.close();
        fs.rmSync(daemon.rundir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
