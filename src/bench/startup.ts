/**
 * The small-store case, as a test suite meets it: a daemon started, used
 * briefly and updated, many times. Each measure runs on fresh daemons, in
 * alternating order with its reference — C xenstored 4.17 or a bare node
 * running `0`, started the same way (the floor for any Node daemon).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Daemon } from '../daemon/daemon.js';
import { parseOptions } from '../daemon/options.js';
import { encodeFrame } from '../protocol/frame.js';
import { MessageType } from '../wire/vocabulary.js';
import { rssBytes, type BenchDaemon } from './daemons.js';
import { takePausePhases, type PhaseTable } from './pause-phases.js';
import { median } from './report.js';
import type { LibxenstoreDriver } from './xsclient.js';

type Starter = () => Promise<BenchDaemon>;

interface Row {
  label: string;
  unit: string;
  sim: number[];
  reference: number[];
  /** What the reference column holds. */
  against: string;
  /** Whether the simulator's figure should be below (times, memory) or above (throughput) the reference's. */
  better: 'lower' | 'higher';
  /** The bound on the ratio, or on the simulator's own figure when there is no reference. */
  target: number;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (milliseconds: number) => new Promise((r) => setTimeout(r, milliseconds));

/** Sends one READ of /tool/xenstored on a new connection; resolves once answered. */
function firstReply(socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    s.once('error', reject);
    s.once('connect', () => s.write(encodeFrame({ type: MessageType.READ, reqId: 1, txId: 0, payload: Buffer.from('/tool/xenstored\0') })));
    s.once('data', () => {
      s.destroy();
      resolve();
    });
  });
}

/** The bin the simulator's rows start: its #! line is how a bare node is started too. */
const SIM_BIN = fileURLToPath(new URL('../cli/xenstored-sim.js', import.meta.url));

/**
 * Bare node started the way the daemon is: an executable script with the
 * bin's own #! line (env, node and its flags) that runs `0`, or idles.
 */
function bareScripts(dir: string): { once: string; idle: string } {
  const shebang = fs.readFileSync(SIM_BIN, 'utf8').split('\n', 1)[0]!;
  const script = (name: string, body: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${shebang}\n${body}\n`, { mode: 0o755 });
    return file;
  };
  return { once: script('once.cjs', '0'), idle: script('idle.cjs', 'setInterval(() => {}, 1 << 30);') };
}

/** A bare node: until it exits, and its idle RSS. */
async function bareNode(scripts: { once: string; idle: string }): Promise<{ startMs: number; idleRss: number }> {
  const t0 = process.hrtime.bigint();
  const once = spawn(scripts.once, [], { stdio: 'ignore' });
  await new Promise((r) => once.once('exit', r));
  const startMs = ms(t0);
  const idle = spawn(scripts.idle, [], { stdio: 'ignore' });
  await sleep(500);
  const idleRss = rssBytes(idle.pid!);
  idle.kill();
  await new Promise((r) => idle.once('exit', r));
  return { startMs, idleRss };
}

/** A fresh daemon in this process until its first reply, after one untimed start (modules loaded). */
async function inProcessStart(runs: number): Promise<number[]> {
  const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-bench-inproc-'));
  const samples: number[] = [];
  try {
    for (let run = 0; run <= runs; run++) {
      const t0 = process.hrtime.bigint();
      const daemon = new Daemon(parseOptions([], { XENSTORED_RUNDIR: rundir }), () => {});
      await daemon.listen();
      await firstReply(daemon.options.socketPath);
      if (run > 0) samples.push(ms(t0));
      await daemon.close();
    }
  } finally {
    fs.rmSync(rundir, { recursive: true, force: true });
  }
  return samples;
}

/** Pause another client sees in one live update of a fresh daemon holding 1k nodes and 10 connections. */
async function smallLiveUpdate(client: LibxenstoreDriver, d: BenchDaemon, phases: PhaseTable): Promise<number> {
  client.one(d.socket, ['fill', 1000, 100, '/small']);
  const held = await client.hold(d.socket, 10);
  const [update] = client.run(d.socket, ['lu', d.liveUpdateBinary, 1], 120_000);
  const alive = await held.release();
  if (alive !== 10) throw new Error(`${d.name}: ${alive} of 10 connections survived a live update`);
  if (d.pauseTrace) phases.add(SMALL_LIVE_UPDATE, takePausePhases(d.pauseTrace));
  return update!.gap! * 1000;
}

/** The small live update's column in the phase table. */
const SMALL_LIVE_UPDATE = '1k nodes, 10 connections';

export async function smallStoreMeasures(client: LibxenstoreDriver, sim: Starter, c: Starter | undefined, runs: number, phases: PhaseTable): Promise<string> {
  const row = (label: string, unit: string, against: string, better: Row['better'], target: number): Row =>
    ({ label, unit, sim: [], reference: [], against, better, target });
  const cold = row('start until the first reply', 'ms', 'bare node running `0`, same #! line', 'lower', 1.15);
  const rss = row('resident memory, idle, empty store', 'MB', 'idle bare node', 'lower', 1.1);
  const luSmall = row('live-update pause, 1k nodes, 10 connections', 'ms', 'bare node running `0`, same #! line', 'lower', 1.3);
  const luSmallC = row('live-update pause, 1k nodes, 10 connections', 'ms', 'C xenstored', 'lower', 1);
  const fresh = (['write', 'read', 'dir'] as const).map((mode) =>
    row(`a fresh daemon's first 1,000 ${mode === 'dir' ? 'DIRECTORYs of a 1k-child node' : `${mode.toUpperCase()}s`}`, 'ops/s', 'fresh C xenstored', 'higher', 1));
  const inproc = row('a fresh in-process daemon until its first reply', 'ms', 'none: the target is absolute', 'lower', 2);

  const scriptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-bench-bare-'));
  const scripts = bareScripts(scriptDir);
  for (let run = 0; run < runs; run++) {
    const simFirst = run % 2 === 0;
    const measureSim = async () => {
      const t0 = process.hrtime.bigint();
      const d = await sim();
      try {
        await firstReply(d.socket);
        cold.sim.push(ms(t0));
        await sleep(500);
        rss.sim.push(rssBytes(d.pid) / 2 ** 20);
        fresh.forEach((r, i) => r.sim.push(freshOps(client, d, i)));
        const pause = await smallLiveUpdate(client, d, phases);
        luSmall.sim.push(pause);
        luSmallC.sim.push(pause);
      } finally {
        await d.stop();
      }
    };
    const measureReferences = async () => {
      const bare = await bareNode(scripts);
      cold.reference.push(bare.startMs);
      luSmall.reference.push(bare.startMs);
      rss.reference.push(bare.idleRss / 2 ** 20);
      if (!c) return;
      const d = await c();
      try {
        fresh.forEach((r, i) => r.reference.push(freshOps(client, d, i)));
        luSmallC.reference.push(await smallLiveUpdate(client, d, phases));
      } finally {
        await d.stop();
      }
    };
    if (simFirst) {
      await measureSim();
      await measureReferences();
    } else {
      await measureReferences();
      await measureSim();
    }
  }
  fs.rmSync(scriptDir, { recursive: true, force: true });
  inproc.sim.push(...(await inProcessStart(20)));
  return section([cold, rss, luSmall, luSmallC, ...fresh, inproc]);
}

/** The i-th of WRITE, READ, DIRECTORY: 1,000 requests on a daemon that has served none of that kind. */
function freshOps(client: LibxenstoreDriver, d: BenchDaemon, i: number): number {
  const r = i === 0 ? client.one(d.socket, ['write', 1000, '/fresh'])
    : i === 1 ? client.one(d.socket, ['read', 1000, '/fresh'])
      : client.one(d.socket, ['dir', '/fresh', 1000]);
  return 1000 / r.secs!;
}

function section(rows: Row[]): string {
  const fmt = (v: number[]) => (v.length ? median(v).toFixed(median(v) < 10 ? 2 : 0) : '—');
  const lines = [
    '## Small stores: start-up, first requests, small live update',
    '',
    'Every run starts fresh daemons; the simulator and its reference alternate which goes first. Ratio: sim ÷ reference',
    '(times and memory) or reference ÷ sim (throughput), so the target bounds it from above. The in-process row is one',
    'process that has loaded the modules once: `new Daemon`, `listen`, one READ from a socket client (median of 20).',
    "Bare node is started as the bin is: an executable script with the bin's own #! line (env, node and its flags).",
    '',
    '| measure | unit | sim (median) | reference (median) | reference | runs | ratio | target | met |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | :---: |',
  ];
  for (const r of rows) {
    const sim = r.sim.length ? median(r.sim) : undefined;
    const ref = r.reference.length ? median(r.reference) : undefined;
    const ratio = sim === undefined || ref === undefined ? undefined : r.better === 'lower' ? sim / ref : ref / sim;
    const judged = ref === undefined ? sim : ratio;
    const met = judged === undefined ? '' : judged <= r.target ? 'yes' : '**no**';
    lines.push(`| ${r.label} | ${r.unit} | ${fmt(r.sim)} | ${fmt(r.reference)} | ${r.against} | ${r.sim.length}/${r.reference.length} | ${ratio === undefined ? '—' : ratio.toFixed(2)} | ≤ ${r.target} | ${met} |`);
  }
  return lines.join('\n');
}
