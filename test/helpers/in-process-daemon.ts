/** A daemon inside the test process, with raw clients, torn down after each test. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { installStateCommands } from '../../src/liveupdate/state-commands.js';
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
  const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-test-'));
  const daemon = new Daemon(parseOptions(args, { XENSTORED_RUNDIR: rundir }), () => {});
  await daemon.listen();
  installStateCommands(daemon, () => args);
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

/** Polls `check` until it holds or `ms` pass; returns its last answer. */
export async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return check();
}
