/**
 * Where a live update's pause goes, for the bench and for anyone profiling
 * it: with XENSTORED_SIM_LU_TRACE=<file> in the daemon's environment, both
 * images append one line per phase boundary, `<name> <wall-clock ms>`, to
 * that file. Wall clock, because the marks come from two process images.
 * Without the variable every mark is a no-op.
 */
import { appendPrivateFile } from '../daemon/private-files.js';

export const PAUSE_TRACE_ENV = 'XENSTORED_SIM_LU_TRACE';

/** Appends `name <ms>` (now, or `at`) to the trace file, when one is set; never throws. */
export function markPause(name: string, at?: number): void {
  const file = process.env[PAUSE_TRACE_ENV];
  if (!file) return;
  // node:perf_hooks loads only when tracing: it costs every start a few ms.
  const { performance } = process.getBuiltinModule('node:perf_hooks');
  const ms = at ?? performance.timeOrigin + performance.now();
  try {
    appendPrivateFile(file, `${name} ${ms.toFixed(3)}\n`);
  } catch {
    // A trace is a diagnostic: failing to write one must not fail the update.
  }
}

/**
 * The new image's own start, from Node's start-up timings: when the process
 * image began, when V8 was up, and when Node's bootstrap was done (the
 * entry point's modules load after that).
 */
export function markNodeStart(): void {
  if (!process.env[PAUSE_TRACE_ENV]) return;
  const { performance } = process.getBuiltinModule('node:perf_hooks');
  const t = performance.nodeTiming;
  markPause('node started', performance.timeOrigin);
  markPause('v8 up', performance.timeOrigin + t.v8Start);
  markPause('node bootstrapped', performance.timeOrigin + t.bootstrapComplete);
}
