/**
 * startSim: a fresh daemon inside this process, on a private run directory,
 * started the way the CLI starts one. Cheap enough for one daemon per
 * property run (see `npm run bench`).
 */
import fs from 'node:fs';
import type { Daemon } from '../daemon/daemon.js';
import { parseOptions } from '../daemon/options.js';
import { startDaemon } from '../startup/startup.js';
import { dumpDaemon } from '../liveupdate/state-dump.js';
import { liveUpdateInProcess } from '../liveupdate/in-process.js';
import { installStateCommands } from '../liveupdate/state-commands.js';
import { snapshotOfDaemon } from './snapshot-of-store.js';
import { makeHandle, makeRundir, simArgs, type SimHandle, type SimOptions } from './sim-handle.js';

/**
 * startSim's handle together with the Daemon behind it, for this project's
 * own tests that look at a daemon's insides (not exported from the package:
 * users see only the handle).
 */
export interface InProcessSim {
  readonly handle: SimHandle;
  /** The current daemon (a live update replaces it). */
  daemon(): Daemon;
  /** The live update, done before it returns: bytes a client wrote in this tick are still unread by the old daemon. */
  liveUpdateNow(): void;
}

export async function startSimWithDaemon(options: SimOptions = {}): Promise<InProcessSim> {
  const argv = simArgs(options);
  const rundir = makeRundir();
  const log = options.log ?? (() => {});
  let daemon: Daemon;
  try {
    const started = await startDaemon(parseOptions(argv, { XENSTORED_RUNDIR: rundir }), argv, log);
    if (started.kind !== 'running') throw new Error(`startSim: ${argv.join(' ')} does not start a daemon`);
    daemon = started.daemon;
  } catch (e) {
    fs.rmSync(rundir, { recursive: true, force: true });
    throw e;
  }
  const liveUpdateNow = (): void => {
    daemon = liveUpdateInProcess(daemon, log);
    installStateCommands(daemon, () => argv);
  };
  const handle = makeHandle({
    path: daemon.options.socketPath,
    rundir,
    dump: async () => dumpDaemon(daemon, { version: 2, includeInFlight: false }),
    snapshot: (options) => snapshotOfDaemon(daemon, options),
    liveUpdate: async () => liveUpdateNow(),
    close: () => daemon.close(),
  });
  return { handle, daemon: () => daemon, liveUpdateNow };
}

export async function startSim(options: SimOptions = {}): Promise<SimHandle> {
  return (await startSimWithDaemon(options)).handle;
}
