/**
 * Differential test: the same random operation sequences are sent to the
 * real C xenstored 4.17 (through the xenstored-ref kit) and to
 * xenstored-sim --compat 4.17, and every reply and watch event must be the
 * same (see runner.ts for the transcript definition and the one
 * normalisation, DIRECTORY_PART generation numbers).
 *
 * Every sequence runs on a fresh pair of daemons, started in parallel, so a
 * sequence never sees state left by another one and a shrunk counterexample
 * reproduces on its own.
 *
 * Environment:
 *   DIFF_RUNS=K        sequences to generate (default 100)
 *   DIFF_SEED=S        fast-check seed (default: random, printed)
 *   DIFF_PATH=P        replay one counterexample path (with DIFF_SEED)
 *   DIFF_MAX_OPS=N     most operations per sequence (default 50)
 *   DIFF_SHRINK_MS=T   time budget for shrinking a failure (default 60000; 0 = no shrinking)
 *   DIFF_TARGET=sim|c  compare C against the simulator (default) or against
 *                      a second C xenstored (validates the harness itself)
 *   DIFF_REPORT_DIR=D  where the failure transcripts go (default os.tmpdir())
 *   XS_REF_KIT=DIR     the xenstored-ref kit (default /work/shared/peers/xenstored-ref)
 *   CI                 when set, a daemon that cannot be started fails the test
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DIST_CHECKED_ENV, ensureBuilt } from '../helpers/sim-daemon.js';
import { describeOp, describeSequence, opSequenceArb, type OpSequence } from './op-generator.js';
import {
  compareTranscripts,
  formatTranscript,
  runSequence,
  startCDaemon,
  startSimDaemon,
  type Daemon,
  type Mismatch,
  type Transcript,
} from './runner.js';

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

const RUNS = envInt('DIFF_RUNS', 100);
const MAX_OPS = envInt('DIFF_MAX_OPS', 50);
const SHRINK_MS = envInt('DIFF_SHRINK_MS', 60_000);
const SEED = process.env.DIFF_SEED ? Number(process.env.DIFF_SEED) : (Math.random() * 2 ** 31) | 0;
const REPLAY_PATH = process.env.DIFF_PATH || undefined;
const TARGET = (process.env.DIFF_TARGET ?? 'sim').toLowerCase();
const CI = !!process.env.CI;
const REPORT_DIR = process.env.DIFF_REPORT_DIR ?? tmpdir();

if (TARGET !== 'sim' && TARGET !== 'c') throw new Error(`DIFF_TARGET must be sim or c, got ${TARGET}`);

const REF_NAME = 'C 4.17';
const OTHER_NAME = TARGET === 'sim' ? 'sim --compat 4.17' : 'C 4.17 (second)';

const startRef = (): Promise<Daemon> => startCDaemon(REF_NAME);
const startOther = (): Promise<Daemon> =>
  TARGET === 'sim' ? startSimDaemon(OTHER_NAME, '4.17') : startCDaemon(OTHER_NAME);

const stats = { sequences: 0, ops: 0, mismatches: 0 };
/** Ops after which the reference daemon lost every connection (it died). */
const refDeaths = new Map<string, number>();
const stopping: Promise<void>[] = [];

interface Outcome {
  mismatch: Mismatch | undefined;
  ref: Transcript;
  other: Transcript;
}

/** Runs one sequence on a fresh pair of daemons and compares. */
async function compareOnce(seq: OpSequence): Promise<Outcome> {
  const started = await Promise.allSettled([startRef(), startOther()]);
  const daemons = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const [refD, otherD] = daemons as [Daemon, Daemon];
    const [ref, other] = await Promise.all([
      runSequence(refD.name, refD.socketPath, seq),
      runSequence(otherD.name, otherD.socketPath, seq),
    ]);
    const mismatch = compareTranscripts(ref, other);
    stats.sequences++;
    // Ops compared: ops sent to both daemons, up to and including the first mismatch.
    const lastStep = mismatch ? mismatch.step : ref.steps.length - 1;
    for (let s = 0; s <= lastStep; s++) {
      const a = ref.steps[s];
      const b = other.steps[s];
      if (a?.op && b?.op && !a.skipped && !b.skipped) stats.ops++;
    }
    if (mismatch) stats.mismatches++;
    if (ref.allGoneAt !== undefined) {
      const op = seq.ops[ref.allGoneAt]!;
      const key = describeOp(op);
      refDeaths.set(key, (refDeaths.get(key) ?? 0) + 1);
    }
    return { mismatch, ref, other };
  } finally {
    // Stopping is not awaited here: C xenstored is slow to exit on SIGTERM.
    for (const d of daemons) stopping.push(d.stop());
  }
}

/**
 * Starts and stops each daemon once. Returns a reason to skip when one
 * cannot run; with CI set it throws instead, so the test fails.
 */
async function probeDaemons(): Promise<string | undefined> {
  const problems: string[] = [];
  if (TARGET === 'sim') {
    // Build dist/ once now (what test/global-setup.ts does for a whole run),
    // and not again in the middle of this test if src/ changes meanwhile.
    try {
      ensureBuilt();
      process.env[DIST_CHECKED_ENV] = '1';
    } catch (err) {
      problems.push(`building the simulator failed: ${(err as Error).message}`);
    }
  }
  for (const start of [startRef, startOther]) {
    try {
      const d = await start();
      await d.stop();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length === 0) return undefined;
  const msg = `differential test cannot run:\n${problems.join('\n')}`;
  if (CI) throw new Error(msg);
  return msg;
}

afterAll(async () => {
  await Promise.all(stopping);
  if (refDeaths.size > 0) {
    // Not a failure by itself (the other daemon is compared as usual), but
    // the generator should avoid requests that kill the reference.
    console.warn(
      `${REF_NAME} lost all connections (died?) right after these ops:\n` +
        [...refDeaths].map(([op, n]) => `  ${n}× ${op}`).join('\n'),
    );
  }
  console.log(`differential: ${stats.ops} operations compared over ${stats.sequences} sequences`);
});

describe(`differential: ${REF_NAME} vs ${OTHER_NAME}`, () => {
  it(
    'every reply and watch event is identical',
    async (ctx) => {
      const skipReason = await probeDaemons();
      if (skipReason) {
        console.warn(`${skipReason}\n(skipped; with CI set this fails)`);
        ctx.skip();
        return;
      }

      let firstFailureAt: number | undefined;
      let last: { seq: OpSequence; outcome: Outcome } | undefined;
      let harnessError: { seq: OpSequence; error: unknown } | undefined;
      const property = fc.asyncProperty(opSequenceArb({ maxOps: MAX_OPS }), async (seq) => {
        // Once the shrink budget is spent, or the harness itself broke (a
        // daemon did not start…), report every further candidate as passing:
        // fast-check then stops and keeps the smallest failure so far.
        if (harnessError) return true;
        if (firstFailureAt !== undefined && Date.now() - firstFailureAt > SHRINK_MS) return true;
        let outcome: Outcome;
        try {
          outcome = await compareOnce(seq);
        } catch (error) {
          harnessError = { seq, error };
          return true;
        }
        if (!outcome.mismatch) return true;
        firstFailureAt ??= Date.now();
        last = { seq, outcome };
        return false;
      });

      const started = Date.now();
      const details = await fc.check(property, {
        seed: SEED,
        numRuns: REPLAY_PATH ? 1 : RUNS,
        path: REPLAY_PATH,
        endOnFailure: SHRINK_MS === 0,
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `differential: seed=${SEED} runs=${RUNS} maxOps=${MAX_OPS} target=${TARGET} ` +
          `time=${seconds}s sequences=${stats.sequences} ops=${stats.ops}`,
      );

      if (harnessError && !last) {
        throw new Error(
          `the harness failed (not a difference) on seed=${SEED}:\n` +
            `${(harnessError.error as Error)?.stack ?? String(harnessError.error)}\n\n` +
            `Sequence: ${describeSequence(harnessError.seq)}`,
        );
      }
      if (details.failed) {
        if (!last) throw details.errorInstance ?? new Error('fast-check failed without a recorded run');
        const { seq, outcome } = last;
        const file = join(REPORT_DIR, `xsdiff-failure-${SEED}.txt`);
        const text = [
          `seed=${SEED} path=${details.counterexamplePath}`,
          describeSequence(seq),
          outcome.mismatch!.report,
          formatTranscript(outcome.ref),
          formatTranscript(outcome.other),
        ].join('\n\n');
        writeFileSync(file, text);
        expect.fail(
          [
            `${REF_NAME} and ${OTHER_NAME} differ (shrunk ${details.numShrinks} times).`,
            `Reproduce: DIFF_SEED=${SEED} DIFF_PATH=${details.counterexamplePath}` +
              `${TARGET === 'c' ? ' DIFF_TARGET=c' : ''} npx vitest run test/differential`,
            `Both transcripts: ${file}`,
            '',
            outcome.mismatch!.report,
            '',
            `Sequence: ${describeSequence(seq)}`,
            ...(harnessError ? ['', `(shrinking stopped early: ${(harnessError.error as Error)?.message ?? harnessError.error})`] : []),
          ].join('\n'),
        );
      }
      expect(stats.sequences).toBeGreaterThan(0);
    },
    30 * 60_000,
  );
});
