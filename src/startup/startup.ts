/**
 * How a daemon process comes up: fresh, from a stream (--restore), as the
 * new image of a live update (-U), or only to check a stream (the dry run
 * a live update makes before exec).
 */
import fs from 'node:fs';
import { resumeAfterUpdate } from '../liveupdate/resume.js';
import { installStateCommands } from '../liveupdate/state-commands.js';
import { NO_SOCKETS, restoreDaemon } from '../liveupdate/state-restore.js';
import { Daemon } from '../daemon/daemon.js';
import type { DaemonOptions } from '../daemon/options.js';

export type Startup = { kind: 'checked' } | { kind: 'running'; daemon: Daemon; resumed: boolean };

export async function startDaemon(options: DaemonOptions, argv: string[], log: (line: string) => void): Promise<Startup> {
  if (options.checkStream) {
    const stream = fs.readFileSync(options.checkStream === '-' ? 0 : options.checkStream);
    restoreDaemon(options, stream, NO_SOCKETS, () => {});
    return { kind: 'checked' };
  }
  let daemon: Daemon;
  if (options.liveUpdate) {
    daemon = resumeAfterUpdate(options, log);
  } else if (options.restoreFile) {
    const restored = restoreDaemon(options, fs.readFileSync(options.restoreFile), NO_SOCKETS, log);
    daemon = restored.daemon;
    await daemon.listen();
  } else {
    daemon = new Daemon(options, log);
    await daemon.listen();
  }
  installStateCommands(daemon, () => argv);
  return { kind: 'running', daemon, resumed: options.liveUpdate };
}
