/**
 * Prints one plain closing line after the run, for CI:
 *
 *   N passed, N failed            (", N skipped" is added when any were skipped)
 *
 * "failed" also counts, once each, test files that failed to load, files or
 * describe blocks whose hooks threw, and unhandled errors, so that the line
 * agrees with vitest's exit code. Skipped includes todo tests (and tests that
 * vitest skips because their beforeAll failed).
 *
 * When the environment has CI set (anything but "", "0" or "false"), a run
 * with skipped tests fails: the reporter says why and sets the exit code 1.
 *
 * Registered in vitest.config.ts:
 *   reporters: ['default', './test/reporters/summary-line.ts'],
 */
import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

export function ciIsSet(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

export function countResults(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const mod of testModules) {
    for (const test of mod.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else if (state === 'skipped') counts.skipped++;
      // 'pending': never ran (interrupted run); not counted
    }
    // Errors outside tests: a file that failed to import or whose top-level
    // hooks threw, a describe whose beforeAll/afterAll threw (vitest then
    // reports its tests as skipped). Each such file or suite counts once.
    if (mod.errors().length > 0 || (mod.state() === 'failed' && !hasFailedTest(mod))) counts.failed++;
    for (const suite of mod.children.allSuites()) if (suite.errors().length > 0) counts.failed++;
  }
  counts.failed += unhandledErrors.length;
  return counts;
}

function hasFailedTest(mod: TestModule): boolean {
  for (const test of mod.children.allTests()) if (test.result().state === 'failed') return true;
  return false;
}

export function summaryLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed${c.skipped > 0 ? `, ${c.skipped} skipped` : ''}`;
}

export default class SummaryLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, _reason: TestRunEndReason): void {
    const counts = countResults(testModules, unhandledErrors);
    if (counts.skipped > 0 && ciIsSet()) {
      process.stdout.write(`\nCI is set: ${counts.skipped} skipped test(s) are not allowed; failing the run.\n`);
      process.exitCode = 1;
    }
    if (counts.failed > 0 && !process.exitCode) process.exitCode = 1;
    process.stdout.write(`\n${summaryLine(counts)}\n`);
  }
}
