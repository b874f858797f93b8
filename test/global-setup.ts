/**
 * vitest globalSetup: builds dist/ once per run (`npm run build`)
 * when it is missing or older than src/, so that tests spawning the compiled
 * CLI (test/helpers/sim-daemon.ts) never run a stale daemon. A failed build
 * fails the run with the compiler's output.
 */
import { DIST_CHECKED_ENV, ensureBuilt } from './helpers/sim-daemon.js';

export default function setup(): void {
  ensureBuilt();
  // Test workers inherit this: they then leave dist/ alone for the run.
  process.env[DIST_CHECKED_ENV] = '1';
}
