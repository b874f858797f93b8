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
import { makeHandle, makeRundir, simArgs, type SimHandle, type SimOptions } from './sim-handle.js';

export async function startSim(options: SimOptions = {}): Promise<SimHandle> {
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
  return makeHandle({
    path: daemon.options.socketPath,
    rundir,
    dump: async () => dumpDaemon(daemon, { version: 2, includeInFlight: false }),
    liveUpdate: async () => {
      daemon = liveUpdateInProcess(daemon, log);
      installStateCommands(daemon, () => argv);
    },
    close: () => daemon.close(),
  });
}
