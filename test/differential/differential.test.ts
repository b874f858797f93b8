/**
 * Differential test: the same random operation sequences are sent to the
 * real C xenstored 4.17 (through the xenstored-ref kit) and to
 * xenstored-sim --compat 4.17, and every reply and watch event must be the
 * same (see runner.ts for the transcript definition and the one
 * normalisation, DIRECTORY_PART generation numbers; see op-generator.ts for
 * the few requests left out because C 4.17 answers them with undefined
 * behaviour: stale errno or abort).
 *
 * Every sequence runs on a fresh pair of daemons (started ahead, in the
 * background), so a sequence never sees state left by another one and a
 * counterexample reproduces on its own. On a difference fast-check shrinks
 * the sequence (each attempt on fresh daemons), then the sequence is cut
 * after the first differing op and single ops are dropped greedily while a
 * difference remains, all within DIFF_SHRINK_MS. The failure message gives
 * the seed, the fast-check path, the minimised sequence and the first
 * difference (op, and both daemons' messages on every connection); both full
 * transcripts are written to a file.
 *
 * Run:   npx vitest run test/differential
 * Prints at the end: `differential: N operations compared over K sequences`
 * (ops sent to both daemons, up to the first difference in a failing one;
 * sequences include the shrinking runs).
 *
 * Environment:
 *   DIFF_RUNS=K        sequences to generate (default 170, over 5,000 ops; ~75 s on 2 busy cores)
 *   DIFF_SEED=S        fast-check seed (default: random, printed)
 *   DIFF_PATH=P        replay a counterexample path (with DIFF_SEED)
 *   DIFF_MAX_OPS=N     most operations per sequence (default 60)
 *   DIFF_SHRINK_MS=T   time budget for shrinking a failure (default 30000: 60 % for
 *                      fast-check, 40 % for dropping single ops; 0 = none)
 *   DIFF_TARGET=sim|c  compare C against the simulator (default) or against
 *                      a second C xenstored (validates the harness itself)
 *   DIFF_AHEAD=N       daemon pairs started ahead (default 2)
 *   DIFF_REPORT_DIR=D  where the failure transcripts go (default os.tmpdir())
 *   XS_REF_KIT=DIR     the xenstored-ref kit (default /work/shared/peers/xenstored-ref)
 *   CI                 when set, a daemon that cannot be started fails the
 *                      test instead of skipping it
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DIST_CHECKED_ENV, ensureBuilt } from '../helpers/sim-daemon.js';
import { ciIsSet } from '../reporters/summary-line.js';
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

const RUNS = envInt('DIFF_RUNS', 170);
const MAX_OPS = envInt('DIFF_MAX_OPS', 60);
const SHRINK_MS = envInt('DIFF_SHRINK_MS', 30_000);
const SEED = process.env.DIFF_SEED ? Number(process.env.DIFF_SEED) : (Math.random() * 2 ** 31) | 0;
const REPLAY_PATH = process.env.DIFF_PATH || undefined;
const TARGET = (process.env.DIFF_TARGET ?? 'sim').toLowerCase();
const CI = ciIsSet();
const REPORT_DIR = process.env.DIFF_REPORT_DIR ?? tmpdir();

if (TARGET !== 'sim' && TARGET !== 'c') throw new Error(`DIFF_TARGET must be sim or c, got ${TARGET}`);

const REF_NAME = 'C 4.17';
const OTHER_NAME = TARGET === 'sim' ? 'sim --compat 4.17' : 'C 4.17 (second)';

const startRef = (): Promise<Daemon> => startCDaemon(REF_NAME);
const startOther = (): Promise<Daemon> =>
  TARGET === 'sim' ? startSimDaemon(OTHER_NAME, '4.17') : startCDaemon(OTHER_NAME);

const stats = { sequences: 0, ops: 0, mismatches: 0, referenceStalls: 0 };
/** Ops after which the reference daemon lost every connection (it died). */
const refDeaths = new Map<string, number>();
const stopping: Promise<void>[] = [];

/**
 * Fresh daemon pairs, started ahead (DIFF_AHEAD pairs, default 2): while a
 * sequence runs, the pairs for the next ones are already starting (daemon
 * start-up, mostly the simulator's Node start-up, dominates otherwise).
 */
class PairPool {
  private readonly spares: Promise<PromiseSettledResult<Daemon>[]>[] = [];

  constructor(private readonly ahead: number) {}

  private startPair(): Promise<PromiseSettledResult<Daemon>[]> {
    return Promise.allSettled([startRef(), startOther()]);
  }

  /** A fresh pair [ref, other]; throws (after stopping what did start) if one failed. */
  async take(): Promise<[Daemon, Daemon]> {
    const pair = this.spares.shift() ?? this.startPair();
    while (this.spares.length < this.ahead) this.spares.push(this.startPair());
    const settled = await pair;
    const up = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const d of up) stopping.push(d.stop());
      throw failed.reason;
    }
    return up as [Daemon, Daemon];
  }

  /** Stops the spare pairs. */
  async close(): Promise<void> {
    const spares = this.spares.splice(0, this.spares.length);
    for (const spare of spares) for (const r of await spare) if (r.status === 'fulfilled') stopping.push(r.value.stop());
  }
}
const pool = new PairPool(envInt('DIFF_AHEAD', 2));

interface Outcome {
  mismatch: Mismatch | undefined;
  ref: Transcript;
  other: Transcript;
}

/** Runs one sequence on a fresh pair of daemons and compares. */
async function runPair(seq: OpSequence): Promise<Outcome> {
  const [refD, otherD] = await pool.take();
  try {
    const [ref, other] = await Promise.all([
      runSequence(refD, seq),
      runSequence(otherD, seq),
    ]);
    return { mismatch: compareTranscripts(ref, other), ref, other };
  } finally {
    // Not awaited here: C xenstored is slow to exit on SIGTERM.
    stopping.push(refD.stop(), otherD.stop());
  }
}

/** Some connection of `t` waited for a reply in vain. */
function stalled(t: Transcript): boolean {
  return t.steps.some((step) => step.perConn.some((received) => received.some((r) => r.kind === 'timeout')));
}

/**
 * C 4.17 now and then leaves a guest's request unanswered for good (about
 * once in 10,000 sequences; the same sequence replayed is answered). A
 * difference whose only cause may be such a stall on the reference side is
 * run again on fresh daemons: a real difference comes back every time.
 */
const STALL_RERUNS = 2;

async function compareOnce(seq: OpSequence): Promise<Outcome> {
  let outcome = await runPair(seq);
  for (let rerun = 0; rerun < STALL_RERUNS && outcome.mismatch && stalled(outcome.ref) && !stalled(outcome.other); rerun++) {
    stats.referenceStalls++;
    outcome = await runPair(seq);
  }
  const { mismatch, ref, other } = outcome;
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
    const key = describeOp(seq.ops[ref.allGoneAt]!);
    refDeaths.set(key, (refDeaths.get(key) ?? 0) + 1);
  }
  return outcome;
}

/**
 * After fast-check's shrinking: cut the sequence after the first differing
 * op (later ops cannot influence it), then greedily drop single ops while a
 * difference remains, until `deadline`. Returns the smallest failing run.
 */
async function minimise(
  seq: OpSequence,
  outcome: Outcome,
  deadline: number,
): Promise<{ seq: OpSequence; outcome: Outcome; removed: number }> {
  const cut = (s: OpSequence, o: Outcome): OpSequence =>
    o.mismatch!.opIndex >= 0 ? { ...s, ops: s.ops.slice(0, o.mismatch!.opIndex + 1) } : s;
  let best = { seq: cut(seq, outcome), outcome };
  let removed = seq.ops.length - best.seq.ops.length;
  for (let i = best.seq.ops.length - 2; i >= 0 && Date.now() < deadline; i--) {
    if (i >= best.seq.ops.length - 1) continue;
    const candidate: OpSequence = { ...best.seq, ops: best.seq.ops.filter((_, j) => j !== i) };
    let o: Outcome;
    try {
      o = await compareOnce(candidate);
    } catch {
      break; // a daemon failed to start: keep what we have
    }
    if (o.mismatch) {
      const shorter = cut(candidate, o);
      removed += best.seq.ops.length - shorter.ops.length;
      best = { seq: shorter, outcome: o };
      i = Math.min(i, best.seq.ops.length - 1);
    }
  }
  return { ...best, removed };
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
  await pool.close();
  await Promise.all(stopping);
  if (refDeaths.size > 0) {
    // Not a failure by itself (the other daemon is compared as usual), but
    // the generator should avoid requests that kill the reference.
    console.warn(
      `${REF_NAME} lost all connections (died?) right after these ops:\n` +
        [...refDeaths].map(([op, n]) => `  ${n}× ${op}`).join('\n'),
    );
  }
  if (stats.referenceStalls > 0) console.warn(`${REF_NAME} left a request unanswered ${stats.referenceStalls}× (run again on fresh daemons)`);
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
        if (firstFailureAt !== undefined && Date.now() - firstFailureAt > SHRINK_MS * 0.6) return true;
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
        const shrunkOps = last.seq.ops.length;
        const { seq, outcome, removed } = await minimise(last.seq, last.outcome, Date.now() + SHRINK_MS * 0.4);
        const file = join(REPORT_DIR, `xsdiff-failure-${SEED}.txt`);
        const text = [
          `seed=${SEED} path=${details.counterexamplePath} (the sequence below is further minimised)`,
          describeSequence(seq),
          outcome.mismatch!.report,
          formatTranscript(outcome.ref),
          formatTranscript(outcome.other),
        ].join('\n\n');
        writeFileSync(file, text);
        expect.fail(
          [
            `${REF_NAME} and ${OTHER_NAME} differ (fast-check shrank ${details.numShrinks} times to ` +
              `${shrunkOps} ops; then ${removed} more ops dropped).`,
            `Reproduce: DIFF_SEED=${SEED} DIFF_PATH=${details.counterexamplePath}` +
              `${TARGET === 'c' ? ' DIFF_TARGET=c' : ''} npx vitest run test/differential` +
              ` (replays fast-check's counterexample; the sequence below is minimised further)`,
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
