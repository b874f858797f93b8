/**
 * Checks a stream file the way a daemon would use it, so that `xenstore-stream
 * verify` can never disagree with `--restore` or `import-domain`: a stream
 * with a root node is restored into a scratch daemon (as the live-update dry
 * run does), any other is imported into one as a single domain.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../daemon/daemon.js';
import { parseOptions } from '../daemon/options.js';
import { iterateStream, readHeader } from '../stream/stream-reader.js';
import { importDomain } from './domain-migration.js';
import { NO_SOCKETS, restoreDaemon } from './state-restore.js';

export type StreamUse = { kind: 'state' } | { kind: 'domain'; domid: number };

/** Throws the StreamError or MigrationError the daemon would answer; else says what the stream is. */
export function verifyStream(stream: Buffer): StreamUse {
  const { version } = readHeader(stream);
  // Version 1 is what C xenstored 4.17 writes; judge it as a 4.17 daemon would.
  const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenstore-stream-verify-'));
  try {
    const options = parseOptions(['--compat', version === 1 ? '4.17' : 'master'], { XENSTORED_RUNDIR: rundir });
    if (hasRoot(stream)) {
      restoreDaemon(options, stream, NO_SOCKETS, () => {});
      return { kind: 'state' };
    }
    return { kind: 'domain', domid: importDomain(new Daemon(options, () => {}), stream) };
  } finally {
    fs.rmSync(rundir, { recursive: true, force: true });
  }
}

function hasRoot(stream: Buffer): boolean {
  for (const { record } of iterateStream(stream)) {
    if (record.kind === 'node' && record.connId === 0 && record.path === '/') return true;
  }
  return false;
}
