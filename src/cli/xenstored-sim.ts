#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * `xenstored-sim`: runs the daemon in the foreground until SIGTERM/SIGINT
 * (with `--ui`, the sandbox page too); `xenstored-sim shell` and
 * `xenstored-sim control ...` are clients of any xenstored instead.
 * The node flag keeps V8's young generation at 1 MB a half instead of up to
 * 16: a store's nodes live long anyway, and it halves the resident memory
 * of a 100k-node store at no measurable cost in throughput.
 */
import { HelpRequested, parseOptions, USAGE, DaemonUsageError, type DaemonOptions } from '../daemon/options.js';
import { startDaemon } from '../startup/startup.js';
import type { Sandbox } from '../ui/sandbox.js';

const log = (line: string) => process.stderr.write(`xenstored-sim: ${line}\n`);

function options(argv: string[]): DaemonOptions | undefined {
  try {
    return parseOptions(argv, process.env);
  } catch (e) {
    if (e instanceof HelpRequested) process.stdout.write(USAGE);
    else if (e instanceof DaemonUsageError) {
      log(e.message);
      process.stderr.write(USAGE);
      process.exitCode = 2;
    } else throw e;
    return undefined;
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'shell' || argv[0] === 'control') {
    // Loaded only for these commands: the daemon's start-up does not pay for them.
    const { runClientCommand } = await import('../ui/client-commands.js');
    process.exitCode = await runClientCommand(argv[0], argv.slice(1));
    return;
  }
  const opts = options(argv);
  if (!opts) return;
  let startup;
  try {
    startup = await startDaemon(opts, argv, log);
  } catch (e) {
    log((e as Error).message);
    process.exitCode = 1;
    return;
  }
  if (startup.kind === 'checked') return;
  const { daemon, resumed } = startup;
  let sandbox: Sandbox | undefined;
  if (opts.ui) {
    try {
      const { startSandbox } = await import('../ui/sandbox.js');
      sandbox = await startSandbox(daemon, opts.ui, log);
    } catch (e) {
      log(`--ui: ${(e as Error).message}`);
      await daemon.close();
      process.exitCode = 1;
      return;
    }
  }
  const stop = () => void Promise.all([sandbox?.close(), daemon.close()]).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Only now: whoever waits for this line may signal us at once.
  if (resumed) return;
  process.stdout.write(`XENSTORED_PATH=${opts.socketPath}\n${sandbox ? `UI=${sandbox.url}\n` : ''}`);
}

void main();
