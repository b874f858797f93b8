/**
 * Issue 12's check: a dom0 client's READ latency, idle and while one guest
 * attack of the issue runs, on the simulator and on C xenstored 4.17 (its
 * guests through the kit's guest-ring-proxy.py). Each attack gets a fresh
 * daemon; dom0's idle latency is measured on it first. The attacker runs
 * in a process of its own (guest-attacker.ts). Also the 16-client mixed
 * throughput, which a fairer scheduler must not cost.
 *
 * Alone: `node dist/bench/guest-attacks.js [attack...]` (env ATTACK_MS,
 * default 3000; BENCH_NO_C=1 for the simulator only; RUNS, default 5, of
 * the mixed measure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WireClient } from '../testing/wire-client.js';
import { MessageType as T } from '../wire/vocabulary.js';
import { findKit, startC, startSim, type BenchDaemon } from './daemons.js';
import { ATTACKS, guestCount, type Attack } from './guest-attacker.js';
import { median } from './report.js';
import { LibxenstoreDriver } from './xsclient.js';

type DaemonName = 'sim' | 'C';
type Starter = (rundir: string) => Promise<BenchDaemon>;

export interface Latency {
  p50: number;
  p99: number;
  max: number;
  samples: number;
  /** A reply still missing when the probe gave up (counted as its wait so far). */
  unanswered: boolean;
}

export interface AttackRow {
  daemon: DaemonName;
  attack: Attack;
  idle: Latency;
  /** Or why the attack could not be measured. */
  attacked: Latency | string;
}

export interface AttackResults {
  rows: AttackRow[];
  mixed: Partial<Record<DaemonName, number>>;
  loadBefore: number;
  loadAfter: number;
  probeMs: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const FIRST_GUEST = 5;
/** How long a probe waits for one reply past the end of its window before it gives up. */
const PROBE_GRACE_MS = 10_000;
/** How long a guest-ring proxy or an attacker may take to set up. */
const SETUP_MS = 60_000;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** dom0 READs one after another for `ms`, each timed from send to reply. */
async function probe(dom0: WireClient, ms: number): Promise<Latency> {
  const times: number[] = [];
  const end = performance.now() + ms;
  let unanswered = false;
  while (performance.now() < end) {
    const t0 = performance.now();
    try {
      await dom0.reply(dom0.send(T.READ, '/probe\0'), 'the probe READ', end - t0 + PROBE_GRACE_MS);
    } catch {
      unanswered = true;
    }
    times.push(performance.now() - t0);
    if (unanswered) break;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), max: times.at(-1)!, samples: times.length, unanswered };
}

function waitForLine(child: ChildProcess, line: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what} was not ready within ${SETUP_MS / 1000} s`)), SETUP_MS);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (!out.includes(line)) return;
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready: ${err.trim()}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Introduces `domid` as a toolstack does; C's shim maps the ring, the port must not be 0. */
async function introduce(dom0: WireClient, domid: number): Promise<void> {
  await dom0.call(T.WRITE, `/local/domain/${domid}\0`);
  await dom0.call(T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
  const answer = await dom0.call(T.INTRODUCE, `${domid}\0${0}\0${16 + domid}\0`);
  if (answer.text !== 'OK\0') throw new Error(`INTRODUCE ${domid}: ${answer.text}`);
}

async function runAttack(daemonName: DaemonName, start: Starter, kit: string | undefined, workDir: string, attack: Attack, ms: number): Promise<AttackRow> {
  const rundir = fs.mkdtempSync(path.join(workDir, `${daemonName}-${attack}-`));
  const daemon = await start(rundir);
  const children: ChildProcess[] = [];
  try {
    const dom0 = await WireClient.connect(daemon.socket, { timeoutMs: 60_000 });
    await dom0.call(T.WRITE, '/probe\0x');
    await probe(dom0, Math.min(ms, 500)); // warm-up: the simulator's JIT, both daemons' caches
    const idle = await probe(dom0, ms);
    const attacked = await attackedLatency(daemonName, dom0, kit, rundir, attack, ms, children).catch((e: Error) => e.message);
    dom0.close();
    return { daemon: daemonName, attack, idle, attacked };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    await daemon.stop();
    fs.rmSync(rundir, { recursive: true, force: true });
  }
}

/** Sets the attack up (guests, proxies, the attacker, whose processes go to `children`), then probes dom0. */
async function attackedLatency(
  daemonName: DaemonName, dom0: WireClient, kit: string | undefined, rundir: string, attack: Attack, ms: number, children: ChildProcess[],
): Promise<Latency> {
  const domids = Array.from({ length: guestCount(attack) }, (_, i) => FIRST_GUEST + i);
  for (const domid of domids) {
    await introduce(dom0, domid);
    if (daemonName === 'C') {
      const proxy = spawn('/usr/bin/python3', [path.join(kit!, 'guest-ring-proxy.py'), rundir, String(domid)], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(proxy);
      await waitForLine(proxy, 'ready', `guest-ring-proxy.py for domain ${domid}`);
    }
  }
  const sockets = domids.map((d) => path.join(rundir, 'domain', String(d)));
  const attacker = spawn(process.execPath, [path.join(here, 'guest-attacker.js'), attack, ...sockets], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(attacker);
  await waitForLine(attacker, 'ready', `the ${attack} attacker`);
  await new Promise((r) => setTimeout(r, 500)); // past the attack's start
  return probe(dom0, ms);
}

/** 16 clients, 3 READs : 1 WRITE (the main table's `mixed`), alternating daemons, median ops/s. */
async function mixedThroughput(starters: Partial<Record<DaemonName, Starter>>, workDir: string, runs: number): Promise<Partial<Record<DaemonName, number>>> {
  const client = LibxenstoreDriver.build(path.resolve(here, '..', '..'));
  const samples: Record<DaemonName, number[]> = { sim: [], C: [] };
  const names = Object.keys(starters) as DaemonName[];
  const daemons = await Promise.all(names.map((n) => starters[n]!(fs.mkdtempSync(path.join(workDir, `${n}-mixed-`)))));
  try {
    for (const d of daemons) client.one(d.socket, ['mixed', 16, 500, '/warm']);
    for (let run = 0; run < runs; run++) {
      for (const [i, d] of (run % 2 ? [...daemons].reverse() : daemons).entries()) {
        const r = client.one(d.socket, ['mixed', 16, 2000, `/mixed${run}`]);
        samples[(run % 2 ? [...names].reverse() : names)[i]!].push(r.ops! / r.secs!);
        client.one(d.socket, ['rm', `/mixed${run}`]);
      }
    }
  } finally {
    for (const d of daemons) await d.stop();
  }
  return Object.fromEntries(names.map((n) => [n, median(samples[n])]));
}

export async function measureGuestAttacks(repo: string, options: { ms: number; withC: boolean; mixedRuns: number; attacks?: Attack[]; progress?: (line: string) => void }): Promise<AttackResults> {
  const loadBefore = os.loadavg()[0]!;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenstored-sim-attacks-'));
  const kit = options.withC ? findKit(repo) : undefined;
  const starters: Partial<Record<DaemonName, Starter>> = { sim: (dir) => startSim(repo, dir) };
  if (kit) starters.C = (dir) => startC(kit, dir);
  const rows: AttackRow[] = [];
  try {
    for (const attack of options.attacks ?? (Object.keys(ATTACKS) as Attack[])) {
      for (const name of Object.keys(starters) as DaemonName[]) {
        const row = await runAttack(name, starters[name]!, kit, workDir, attack, options.ms);
        rows.push(row);
        options.progress?.(`  ${name}: ${attack}: ${typeof row.attacked === 'string' ? row.attacked : latencyText(row.attacked)} (idle ${latencyText(row.idle)})`);
      }
    }
    const mixed = await mixedThroughput(starters, workDir, options.mixedRuns);
    return { rows, mixed, loadBefore, loadAfter: os.loadavg()[0]!, probeMs: options.ms };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const msText = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3));

const latencyText = (l: Latency) => `p50 ${msText(l.p50)} p99 ${msText(l.p99)} max ${msText(l.max)} ms`;

export function guestAttackSection(res: AttackResults): string {
  const pooled = (daemon: DaemonName) => median(res.rows.filter((r) => r.daemon === daemon).map((r) => r.idle.p99));
  const lines = res.rows.map((r) => {
    const l = r.attacked;
    const idle = `${msText(r.idle.p50)} / ${msText(r.idle.p99)}`;
    if (typeof l === 'string') return `| ${r.daemon} | ${ATTACKS[r.attack]} | ${idle} | not measured: ${l} | | | | |`;
    const ratio = l.p99 / pooled(r.daemon);
    const max = l.unanswered ? `≥ ${msText(l.max)} (unanswered)` : msText(l.max);
    return `| ${r.daemon} | ${ATTACKS[r.attack]} | ${idle} | ${msText(l.p50)} | ${msText(l.p99)} | ${max} | ${l.samples} | ${ratio.toFixed(1)}${ratio <= 10 ? '' : ' ✗'} |`;
  });
  const mixed = (['sim', 'C'] as const).filter((n) => res.mixed[n] !== undefined).map((n) => `${n} ${Math.round(res.mixed[n]!)} ops/s`);
  return [
    '## dom0 latency under guest attacks (issue 12)',
    '',
    `A dom0 client sends READs one after another for ${res.probeMs} ms, idle and then while one guest attack runs (a fresh daemon per attack, the simulator with \`--compat 4.17\`, C's guests through guest-ring-proxy.py). `
      + `Times in ms; ratio: attacked p99 ÷ the median idle p99 of that daemon (target: at most 10). Load average (1 min) before / after: ${res.loadBefore.toFixed(1)} / ${res.loadAfter.toFixed(1)}.`,
    '',
    '| daemon | guest attack | idle p50 / p99 | p50 | p99 | max | reads | p99 ÷ idle |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...lines,
    '',
    `16 clients, 3 READs : 1 WRITE, median: ${mixed.join(', ')}.`,
  ].join('\n');
}

// `node dist/bench/guest-attacks.js`: this table alone.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repo = path.resolve(here, '..', '..');
  const ms = Number(process.env.ATTACK_MS ?? 3000);
  const attacks = process.argv.slice(2).filter((a): a is Attack => a in ATTACKS);
  measureGuestAttacks(repo, {
    ms,
    withC: process.env.BENCH_NO_C !== '1',
    mixedRuns: Number(process.env.RUNS ?? 5),
    attacks: attacks.length > 0 ? attacks : undefined,
    progress: (l) => process.stderr.write(`${l}\n`),
  })
    .then((res) => console.log(guestAttackSection(res)))
    .catch((e: unknown) => {
      process.stderr.write(`guest attacks bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    });
}
