/**
 * A daemon inside the test process, started by the testing kit's startSim,
 * for tests that look at its insides; with wire clients; torn down after
 * each test. (Tests that only need the wire use startSim itself.)
 */
import { afterEach } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { startSimWithDaemon } from '../../src/testing/start-sim.js';
import { WireClient } from '../../src/testing/wire-client.js';

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
  const sim = await startSimWithDaemon({ args });
  onTearDown(() => sim.handle.stop());
  return sim.daemon();
}

export async function connect(socketPath: string): Promise<WireClient> {
  const client = await WireClient.connect(socketPath);
  onTearDown(() => client.close());
  return client;
}
