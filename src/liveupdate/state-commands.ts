/**
 * CONTROL commands around the migration stream: `dump` (the whole state to
 * a file, at any time), `export-domain` and `import-domain` (per-domain
 * migration) and `live-update`. File names are relative to the run directory.
 */
import fs from 'node:fs';
import { writePrivateFile } from '../daemon/private-files.js';
import path from 'node:path';
import type { Daemon } from '../daemon/daemon.js';
import { cString } from '../protocol/payload.js';
import { data, OK, type Reply } from '../protocol/reply.js';
import { parseDomid } from '../store/domain-ops.js';
import { fail } from '../store/errors.js';
import { exportDomain, importDomain, MigrationError } from './domain-migration.js';
import { LiveUpdateCommand } from './live-update-command.js';
import { StreamError } from '../stream/stream-error.js';
import { dumpDaemon } from './state-dump.js';

/** Runs `work`; a failure is answered as text (like live-update's), never as a crash. */
function attempt(work: () => Reply): Reply {
  try {
    return work();
  } catch (e) {
    if (e instanceof MigrationError || e instanceof StreamError) return data(cString(e.message));
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('E') && 'syscall' in e) {
      return data(cString(`${e.code}: ${e.message}`));
    }
    throw e;
  }
}

export function installStateCommands(daemon: Daemon, daemonArgs: () => string[]): void {
  const file = (name: string | undefined) => path.resolve(daemon.options.rundir, name ?? fail('EINVAL', 'missing file name'));
  daemon.controlExtensions.set('dump', {
    run: (_r, args) => {
      let version: 1 | 2 = 2;
      let c417 = false;
      const rest = [...args];
      while (rest.length > 1) {
        const flag = rest.shift();
        if (flag === '-v' && (rest[0] === '1' || rest[0] === '2')) version = Number(rest.shift()) as 1 | 2;
        else if (flag === '--c417') c417 = true;
        else fail('EINVAL', `bad dump option ${flag}`);
      }
      if (c417) version = 1;
      return attempt(() => {
        writePrivateFile(file(rest[0]), dumpDaemon(daemon, { version, c417, includeInFlight: true }));
        return OK;
      });
    },
  });
  daemon.controlExtensions.set('export-domain', {
    run: (r, args) => {
      if (args.length !== 2) fail('EINVAL');
      const domid = parseDomid(r.store, args[0]);
      return attempt(() => {
        writePrivateFile(file(args[1]), exportDomain(daemon, domid));
        return OK;
      });
    },
  });
  daemon.controlExtensions.set('import-domain', {
    run: (_r, args) => {
      if (args.length !== 1) fail('EINVAL');
      return attempt(() => {
        importDomain(daemon, fs.readFileSync(file(args[0])));
        return OK;
      });
    },
  });
  const liveUpdate = new LiveUpdateCommand(daemon, daemonArgs);
  daemon.controlExtensions.set('live-update', { run: (r, args) => liveUpdate.run(r, args) });
}
