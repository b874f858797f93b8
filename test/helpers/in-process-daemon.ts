/**
 * A daemon inside the test process, started the way the CLI and the testing
 * kit start one, for tests that look at its insides; with raw clients; torn
 * down after each test. (Tests that only need the wire use startSim.)
 */
import fs from 'node:fs';
import { afterEach } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { startDaemon as bootDaemon } from '../../src/startup/startup.js';
import { makeRundir } from '../../src/testing/sim-handle.js';
import { RawClient } from './raw-client.js';

const cleanups: (() => unknown)[] = [];

/** Registers the after-each tear-down; call once at the top of a test file. */
export function tearDownAfterEach(): void {
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f();
  });
}

export function onTearDown(f: () => unknown): void {
  cleanups.push(f);
}

/** Starts a daemon with `args` (as on the command line) in a fresh run directory, CONTROL extensions included. */
export async function startDaemon(args: string[] = []): Promise<Daemon> {
  const rundir = makeRundir();
  const started = await bootDaemon(parseOptions(args, { XENSTORED_RUNDIR: rundir }), args, () => {});
  if (started.kind !== 'running') throw new Error(`startDaemon: ${args.join(' ')} does not start a daemon`);
  const { daemon } = started;
  onTearDown(async () => {
    await daemon.close();
    fs.rmSync(rundir, { recursive: true, force: true });
  });
  return daemon;
}

export async function connect(socketPath: string): Promise<RawClient> {
  const client = await RawClient.connect(socketPath);
  onTearDown(() => client.close());
  return client;
}
