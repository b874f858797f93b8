/**
 * `npm run bench`: xenstored-sim against C xenstored 4.17, side by side.
 *
 * Both daemons get the same requests from the same C client
 * (bench/xsclient.c over libxenstore); each measure runs on both, in
 * alternating order, RUNS times, and the medians and their ratio are
 * printed and written to BENCHMARKS.md. Without the xenstored-ref kit the
 * simulator's figures are still measured and the C column stays empty.
 *
 * env: RUNS (default 5), BENCH_QUICK=1 (about a minute: fewer runs and
 * smaller stores), BENCH_NO_C=1 (simulator only).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cVersion, findKit, rssBytes, startC, startSim, type BenchDaemon } from './daemons.js';
import { listingRequests, type InProcResults } from './inproc.js';
import { format, machine, median, Results, revision, writeReport, type Daemon } from './report.js';
import { FLOOR_SIZES, roundTripFloor } from './floor.js';
import { smallStoreMeasures } from './startup.js';
import { PhaseTable, takePausePhases } from './pause-phases.js';
import { LibxenstoreDriver } from './xsclient.js';
import { kitSection, measureKit } from './testing-kit.js';
import { guestAttackSection, measureGuestAttacks } from './guest-attacks.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.env.BENCH_QUICK === '1';
const runs = Math.max(1, Number(process.env.RUNS ?? (quick ? 2 : 5)));
const luRuns = quick ? 2 : 3;
/** The store the population, memory and live-update measures are made on. */
const bigStore = quick ? 10_000 : 100_000;
/** Run directories of the daemons under test: private to this run, removed at the end. */
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenstored-sim-bench-'));

const log = (line: string) => process.stdout.write(`${line}\n`);
const k = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

type Starter = () => Promise<BenchDaemon>;

interface Context {
  client: LibxenstoreDriver;
  results: Results;
  starters: Partial<Record<Daemon, Starter>>;
}

/** Starts the daemons given, runs `body` with them, always stops them. */
async function withDaemons<T>(ctx: Context, which: Daemon[], body: (d: BenchDaemon[]) => Promise<T>): Promise<T> {
  const started: BenchDaemon[] = [];
  try {
    for (const name of which) {
      const start = ctx.starters[name];
      if (start) started.push(await start());
    }
    return await body(started);
  } finally {
    for (const d of started) await d.stop();
  }
}

function defineMeasures(r: Results): void {
  for (const n of [1000, 10_000]) {
    r.define(`write${n}`, { label: `WRITE, one client, ${k(n)} nodes`, unit: 'ops/s', better: 'higher', target: 1 });
    r.define(`read${n}`, { label: `READ, one client, ${k(n)} nodes`, unit: 'ops/s', better: 'higher', target: 1 });
  }
  for (const size of FLOOR_SIZES) {
    r.define(`floor${size}`, { label: `round-trip floor: bare echo server, Node (this socket path) vs C, ${size}-byte replies`, unit: 'rt/s', better: 'higher' });
  }
  r.define('floorMixed', { label: 'round-trip floor: bare echo server, Node vs C, 16 clients as in the mixed measure', unit: 'ops/s', better: 'higher' });
  r.define('dir1000', { label: 'DIRECTORY of a node with 1k children', unit: 'ops/s', better: 'higher', target: 1 });
  r.define('dir10000', { label: 'DIRECTORY(_PART) listing, 10k children', unit: 'lists/s', better: 'higher', target: 10 });
  r.define('rm1000', { label: 'RM of a node with 1k children', unit: 'ms', better: 'lower' });
  r.define('rm10000', { label: 'RM of a node with 10k children', unit: 'ms', better: 'lower', target: 100, digits: 2 });
  r.define('tx', { label: 'transaction: start + 5 WRITEs + commit', unit: 'tx/s', better: 'higher', target: 1 });
  r.define('mixed', { label: '16 clients, 3 READs : 1 WRITE, aggregate', unit: 'ops/s', better: 'higher', target: 1.5 });
  r.define('watchfan', { label: 'one WRITE fanned out to 1000 watchers, all events in', unit: 'ms', better: 'lower' });
  r.define('populate', { label: `populate ${k(bigStore)} nodes under ${k(bigStore / 100)} dirs, one client`, unit: 's', better: 'lower', target: 5 });
  r.define('lu', { label: `live-update pause other clients see, ${k(bigStore)} nodes, 100 connections`, unit: 'ms', better: 'lower', target: 20 });
  r.define('lu10k', { label: 'live-update pause other clients see, 10k nodes, 10 connections (from the table below)', unit: 'ms', better: 'lower', target: 1 });
  r.define('luTurnaround', { label: `live-update \`-s\` until the requester's next reply, same store`, unit: 'ms', better: 'lower' });
  r.define('rssPerNode', { label: `resident memory per node, ${k(bigStore)} nodes of 16 bytes`, unit: 'B/node', better: 'lower', target: 0.33, digits: 0 });
}

/** Sequential throughput, DIRECTORY, RM, transactions and 16 clients. */
async function throughput(ctx: Context): Promise<void> {
  const { client, results } = ctx;
  await withDaemons(ctx, ['sim', 'C'], async (daemons) => {
    // One untimed round of every kind first, so the simulator's JIT has compiled each request path.
    for (const d of daemons) {
      client.one(d.socket, ['write', 10_000, '/warm']);
      client.one(d.socket, ['read', 10_000, '/warm']);
      client.one(d.socket, ['dir', '/warm', 200]);
      client.one(d.socket, ['tx', 1000, '/warmtx']);
      client.one(d.socket, ['mixed', 16, 500, '/warmmixed']);
      client.run(d.socket, ['watchfan', 1000, '/warmfan', 10]);
      for (const p of ['/warm', '/warmtx', '/warmmixed', '/warmfan']) client.one(d.socket, ['rm', p]);
    }
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? daemons : [...daemons].reverse();
      for (const d of order) {
        const name = d.name as Daemon;
        for (const n of [1000, 10_000]) {
          const prefix = `/bench${n}`;
          // Passes over the same nodes (later WRITEs overwrite), so each sample lasts 100 ms or more.
          const passes = n === 1000 ? 5 : 1;
          const timed = (mode: string) => {
            let secs = 0;
            for (let p = 0; p < passes; p++) secs += client.one(d.socket, [mode, n, prefix]).secs!;
            return (n * passes) / secs;
          };
          results.add(`write${n}`, name, timed('write'));
          results.add(`read${n}`, name, timed('read'));
          // Enough lists to last 50-100 ms: shorter runs time the scheduler more than the daemon.
          const lists = n === 1000 ? 2000 : 200;
          const dir = client.one(d.socket, ['dir', prefix, lists]);
          if (dir.entries !== n) throw new Error(`${d.name}: DIRECTORY ${prefix} gave ${dir.entries} entries`);
          results.add(`dir${n}`, name, lists / dir.secs!);
          results.add(`rm${n}`, name, client.one(d.socket, ['rm', prefix]).secs! * 1000);
        }
        results.add('tx', name, 1000 / client.one(d.socket, ['tx', 1000, '/txbench']).secs!);
        const mixed = client.one(d.socket, ['mixed', 16, 2000, `/mixed${run}`]);
        results.add('mixed', name, mixed.ops! / mixed.secs!);
        client.one(d.socket, ['rm', `/mixed${run}`]);
      }
      log(`  throughput run ${run + 1}/${runs} done`);
    }
    for (const d of daemons) {
      for (const r of client.run(d.socket, ['watchfan', 1000, '/fan', runs])) results.add('watchfan', d.name as Daemon, r.secs! * 1000);
    }
  });
}

/** Population time, memory per node and the live-update pause with 100 connections. */
async function bigStoreMeasures(ctx: Context, name: Daemon): Promise<void> {
  const { client, results } = ctx;
  await withDaemons(ctx, [name], async ([d]) => {
    const empty = rssBytes(d!.pid);
    results.add('populate', name, client.one(d!.socket, ['populate', bigStore, 100, '/lu'], 900_000).secs!);
    results.add('rssPerNode', name, (rssBytes(d!.pid) - empty) / bigStore);
    const held = await client.hold(d!.socket, 100);
    for (const r of client.run(d!.socket, ['lu', d!.liveUpdateBinary, luRuns], 900_000)) {
      results.add('lu', name, r.gap! * 1000);
      results.add('luTurnaround', name, r.next! * 1000);
    }
    allSurvived(name, await held.release(), 100);
    log(`  ${name}: ${k(bigStore)}-node store measured`);
  });
}

/**
 * Whether every held connection came through the live updates. Losing a
 * client is a bug in the simulator, so that throws; C 4.17 is measured as it
 * is, and the loss is logged.
 */
function allSurvived(name: Daemon, alive: number, held: number): boolean {
  if (alive === held) return true;
  if (name === 'sim') throw new Error(`${name}: only ${alive} of ${held} connections survived the live updates`);
  log(`  ${name}: only ${alive} of ${held} connections survived the live updates`);
  return false;
}

interface LuRow {
  daemon: Daemon;
  nodes: number;
  conns: number;
  /** The longest wait of another client that kept sending READs. */
  pauseMs: number[];
  /** From `-s` until the requester's next request is answered. */
  turnaroundMs: number[];
  /** RSS once the nodes were written, before any update. */
  filledRss: number;
  /** RSS after the updates (a freshly restored image). */
  rss: number;
  /** RSS of the same daemon when it was fresh. */
  emptyRss: number;
}

/** Live-update pause as the store and the number of connections grow. */
async function liveUpdateScaling(ctx: Context, name: Daemon, sizes: number[], conns: number[], runsEach: number, phases: PhaseTable): Promise<LuRow[]> {
  const { client } = ctx;
  const rows: LuRow[] = [];
  await withDaemons(ctx, [name], async ([d]) => {
    const emptyRss = rssBytes(d!.pid);
    let filled = 0;
    for (const size of sizes) {
      // The pipelined fill is set-up only; nodes go where `populate` puts them.
      client.one(d!.socket, ['fill', size - filled, 100, `/scale${filled}`], 900_000);
      filled = size;
      const filledRss = rssBytes(d!.pid);
      for (const n of conns) {
        const held = await client.hold(d!.socket, n);
        const updates = client.run(d!.socket, ['lu', d!.liveUpdateBinary, runsEach], 900_000);
        const pauses = updates.map((r) => r.gap! * 1000);
        const turnarounds = updates.map((r) => r.next! * 1000);
        if (d!.pauseTrace) phases.add(`${k(size)} nodes, ${n} connections`, takePausePhases(d!.pauseTrace));
        if (!allSurvived(name, await held.release(), n)) {
          log('    (row left out)');
          continue;
        }
        rows.push({ daemon: name, nodes: size, conns: n, pauseMs: pauses, turnaroundMs: turnarounds, filledRss, rss: rssBytes(d!.pid), emptyRss });
        log(`  ${name}: live update with ${k(size)} nodes, ${n} connections: pause ${median(pauses).toFixed(0)} ms, -s turnaround ${median(turnarounds).toFixed(0)} ms`);
      }
    }
  });
  return rows;
}

function liveUpdateSection(rows: LuRow[]): string {
  const lines = [
    '## Live update: pause as the state grows',
    '',
    'Pause: the longest a client that keeps sending READs through the update waits for a reply (median over the runs).',
    '`-s` turnaround: from sending `live-update -s` until the next request on the same connection is answered; it also',
    'holds the dry run, which xenstored-sim makes while it keeps serving (C makes none).',
    'The other connections are idle, with one watch each. RSS per node is (RSS − RSS of the fresh daemon) ÷ nodes, once',
    'the nodes are written and again after the updates (a freshly restored image).',
    '',
    '| daemon | nodes | connections | pause (ms) | `-s` turnaround (ms) | runs | pause per 1k nodes (ms) | RSS per node, written (B) | RSS after updates (MB) | RSS per node, after (B) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const pause = median(r.pauseMs);
    lines.push(`| ${r.daemon} | ${k(r.nodes)} | ${r.conns} | ${pause.toFixed(0)} | ${median(r.turnaroundMs).toFixed(0)} | ${r.pauseMs.length} | ${((pause / r.nodes) * 1000).toFixed(2)} | ${((r.filledRss - r.emptyRss) / r.nodes).toFixed(0)} | ${(r.rss / 2 ** 20).toFixed(0)} | ${((r.rss - r.emptyRss) / r.nodes).toFixed(0)} |`);
  }
  return lines.join('\n');
}

function inProcessSections(res: InProcResults): string[] {
  const us = (v: number) => v.toFixed(1);
  const scaling = [
    '## Costs that grow only with the work (xenstored-sim, in process)',
    '',
    'Requests go straight to the dispatcher, without a socket: CPU microseconds per operation (median of batches) in a store',
    'of each size. A cost that does not depend on the store size stays the same from one row to the next.',
    '',
    '| store | TRANSACTION_START | commit, 5 written | commit, 50 written | READ depth 3 | READ depth 12 | WRITE depth 3 | WRITE depth 12 | one DIRECTORY_PART of 10k children | full 10k listing |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...res.scaling.map((s) => `| ${k(s.nodes)} | ${us(s.txStart)} | ${us(s.commit5)} | ${us(s.commit50)} | ${us(s.readDepth3)} | ${us(s.readDepth12)} | ${us(s.writeDepth3)} | ${us(s.writeDepth12)} | ${us(s.directoryPartCall)} | ${us(s.directoryPartListing)} |`),
  ];
  const stream = [
    '## Migration stream: dump and restore (xenstored-sim, in process)',
    '',
    '`dumpDaemon` / `restoreDaemon` of the whole state, as a live update does (CPU time, median of 5).',
    '',
    '| nodes | stream (MB) | dump (ms) | dump (MB/s) | restore (ms) | restore (MB/s) | dump + restore per 1k nodes (ms) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...res.stream.map((s) => {
      const mb = s.bytes / 2 ** 20;
      return `| ${k(s.nodes)} | ${mb.toFixed(1)} | ${s.dumpMs.toFixed(0)} | ${(mb / (s.dumpMs / 1000)).toFixed(0)} | ${s.restoreMs.toFixed(0)} | ${(mb / (s.restoreMs / 1000)).toFixed(0)} | ${(((s.dumpMs + s.restoreMs) / s.nodes) * 1000).toFixed(2)} |`;
    }),
  ];
  const watches = [
    '## Watch matching (xenstored-sim, in process)',
    '',
    'One WRITE whose event matches 10 watches, while 100 other clients hold the given number of watches elsewhere',
    '(CPU microseconds per WRITE, median of batches). Watches are filed by path, so the others cost nothing.',
    '',
    '| other watches | µs per WRITE |',
    '| ---: | ---: |',
    ...res.watchMatch.map((w) => `| ${k(w.watches)} | ${us(w.writeUs)} |`),
  ];
  return [scaling.join('\n'), '', stream.join('\n'), '', watches.join('\n')];
}

function inProcess(): InProcResults {
  const child = spawnSync(process.execPath, [path.join(repo, 'dist', 'bench', 'inproc.js'), ...(quick ? ['quick'] : [])], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    timeout: 600_000,
  });
  if (child.status !== 0) throw new Error(`in-process bench failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as InProcResults;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  const client = LibxenstoreDriver.build(repo);
  const kit = process.env.BENCH_NO_C === '1' ? undefined : findKit(repo);
  let cStatus = 'not measured (BENCH_NO_C=1)';
  const simStarter: Starter = () => startSim(repo, path.join(workDir, 'sim'));
  const starters: Context['starters'] = { sim: simStarter };
  if (kit) {
    try {
      const probe = await startC(kit, path.join(workDir, 'c'));
      await probe.stop();
      starters.C = () => startC(kit, path.join(workDir, 'c'));
      cStatus = `C xenstored ${cVersion() ?? '4.17 (version unknown)'}, unmodified, via the xenstored-ref kit`;
    } catch (e) {
      cStatus = `not available: ${(e as Error).message.split('\n')[0]}`;
    }
  } else if (process.env.BENCH_NO_C !== '1') {
    cStatus = 'not available: the xenstored-ref kit was not found (set XS_REF_KIT)';
  }
  const withC = starters.C !== undefined;
  log(`xenstored-sim bench: ${quick ? 'quick, ' : ''}${runs} runs; C daemon ${withC ? 'available' : cStatus}`);

  const results = new Results();
  defineMeasures(results);
  const ctx: Context = { client, results, starters };

  log('throughput (alternating daemons)');
  await throughput(ctx);
  await roundTripFloor(repo, ctx.client, ctx.results, runs);
  log('  round-trip floor measured');
  log('small stores: start-up, first requests, small live update (fresh daemons, alternating)');
  const phases = new PhaseTable();
  const smallStores = await smallStoreMeasures(ctx.client, simStarter, starters.C, runs, phases);
  log(`${k(bigStore)}-node store: population, memory, live update with 100 connections`);
  for (const name of (['sim', 'C'] as const).filter((n) => starters[n])) await bigStoreMeasures(ctx, name);

  log('live update as the state grows');
  const luRows = await liveUpdateScaling(ctx, 'sim', quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000], [10, 1000], luRuns, phases);
  // C at 100k nodes is the live-update row of the main table (a C update of 100k nodes takes 12 s or more).
  if (withC) luRows.push(...(await liveUpdateScaling(ctx, 'C', [10_000], [10, 1000], luRuns, phases)));
  const largest = luRows.filter((r) => r.daemon === 'sim').at(-1)!;
  for (const r of luRows) if (r.nodes === 10_000 && r.conns === 10) for (const p of r.pauseMs) results.add('lu10k', r.daemon, p);

  log('in process: scaling and migration stream');
  const inproc = inProcess();
  log('testing kit: startSim and snapshot()');
  const testingKit = await measureKit(quick ? [10_000] : [10_000, 100_000], quick ? 20 : 100);
  log('dom0 latency under guest attacks (fresh daemons)');
  const attacks = await measureGuestAttacks(repo, { ms: quick ? 1500 : 3000, withC, mixedRuns: runs, progress: log });

  results.sections.push(
    ...ceilings(results),
    smallStores,
    '',
    liveUpdateSection(luRows),
    '',
    phases.section(),
    '',
    `RSS of xenstored-sim with ${k(largest.nodes)} nodes: ${((largest.filledRss - largest.emptyRss) / largest.nodes).toFixed(0)} bytes per node once written, `
      + `${((largest.rss - largest.emptyRss) / largest.nodes).toFixed(0)} after its live updates (${(largest.rss / 2 ** 20).toFixed(0)} MB).`,
    '',
    ...inProcessSections(inproc),
    '',
    kitSection(testingKit),
    '',
    guestAttackSection(attacks),
  );
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const header = [
    '# Benchmarks: xenstored-sim against C xenstored',
    '',
    'Written by `npm run bench` (src/bench/run.ts); do not edit by hand. Run it again to refresh.',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${machine()}`,
    `- Node ${process.version}; xenstored-sim ${readVersion()} (${revision(repo)}), \`--compat 4.17\``,
    `- C daemon: ${cStatus}`,
    `- mode: ${quick ? 'BENCH_QUICK=1 (smaller stores, fewer runs)' : 'full'}, RUNS=${runs}, ${minutes} min in all`,
    `- load average (1 min) before / after: ${loadBefore.toFixed(1)} / ${os.loadavg()[0]!.toFixed(1)} — anything above 0 is other work competing with both daemons`,
    `- client: bench/xsclient.c over libxenstore, one request at a time per connection, the same binary for both daemons`,
    '',
    'Ratio: sim ÷ C for throughput, C ÷ sim for times and memory, so at least 1 means xenstored-sim does better.',
    'Each measure ran on both daemons in alternating order; both got one untimed round of every kind first (JIT warm-up).',
    `The ${k(bigStore)}-node population, memory and live-update rows come from one fresh daemon each (${luRuns} live updates).`,
    'Memory per node is (RSS with the nodes − RSS of the fresh daemon) ÷ nodes; its target 0.33 means at most 3× C\'s.',
    'The round-trip floor rows put a bare echo server in each column (src/bench/echo-server.ts on the daemon\'s own',
    'socket path, bench/echo.c doing C xenstored\'s poll/read/write): no daemon answers faster than its floor.',
  ];
  const file = path.join(repo, 'BENCHMARKS.md');
  writeReport(file, header, results);
  log('');
  log(results.summary());
  log(`\nwritten to ${file} (${minutes} min)`);
}

/**
 * What the two targets bound by round trips rather than by a daemon's work
 * would take, set against the C echo server, which does nothing but I/O.
 */
function ceilings(results: Results): string[] {
  const cListing = results.median('dir10000', 'C');
  const cRoundTrip = results.median(`floor${FLOOR_SIZES[1]}`, 'C');
  const cMixed = results.median('mixed', 'C');
  const echoMixed = { C: results.median('floorMixed', 'C'), sim: results.median('floorMixed', 'sim') };
  const listTarget = results.target('dir10000');
  const mixedTarget = results.target('mixed');
  if (!cListing || !cRoundTrip || !cMixed || !echoMixed.C || !echoMixed.sim || !listTarget || !mixedTarget) return [];
  const requests = listingRequests(10_000);
  const us = (seconds: number) => (seconds * 1e6).toFixed(1);
  return [
    '## What the round-trip-bound targets would take',
    '',
    `- DIRECTORY(_PART) listing of 10k children: libxenstore sends ${requests} requests, each after the reply to the one before. `
      + `C xenstored lists in ${us(1 / cListing)} µs, so a ratio of ${listTarget} needs every round trip within ${us(1 / cListing / listTarget / requests)} µs; `
      + `the C echo server, answering ${FLOOR_SIZES[1]}-byte replies with no work at all, takes ${us(1 / cRoundTrip)} µs `
      + `(a daemon as fast as it would reach ${((1 / cListing) / (requests / cRoundTrip)).toFixed(1)}).`,
    `- 16 clients, mixed: a ratio of ${mixedTarget} needs ${format(cMixed * mixedTarget)} ops/s. The C echo server reaches ${format(echoMixed.C)} `
      + `(${(echoMixed.C / cMixed).toFixed(2)} × C xenstored), the Node echo server on the simulator's socket path ${format(echoMixed.sim)} `
      + `(${(echoMixed.sim / cMixed).toFixed(2)} ×).`,
    '',
  ];
}

function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(workDir, { recursive: true, force: true }));
