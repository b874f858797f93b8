#!/usr/bin/env node
/** `xenstored-sim`: runs the daemon in the foreground until SIGTERM/SIGINT. */
import { Daemon } from '../daemon/daemon.js';
import { HelpRequested, parseOptions, USAGE, UsageError } from '../daemon/options.js';

async function main(): Promise<void> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(USAGE);
      return;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`xenstored-sim: ${e.message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  const daemon = new Daemon(options);
  try {
    await daemon.listen();
  } catch (e) {
    process.stderr.write(`xenstored-sim: cannot listen on ${options.socketPath}: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`XENSTORED_PATH=${options.socketPath}\n`);
  const stop = () => {
    void daemon.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
