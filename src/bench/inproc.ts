/**
 * In-process measures of xenstored-sim alone: requests go straight to the
 * dispatcher (no socket), so the figures are the daemon's own cost and show
 * how each operation scales with the size of the store. Also times the
 * migration stream (dumpDaemon / restoreDaemon) that live update uses.
 *
 * Times are this process's CPU time (user + system), not wall time, so that
 * other work on the machine disturbs them less.
 *
 * Run as `node dist/bench/inproc.js [quick]`; prints one JSON object.
 */
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../daemon/daemon.js';
import { parseOptions } from '../daemon/options.js';
import { dispatch } from '../protocol/dispatch.js';
import { MessageType } from '../wire/vocabulary.js';
import type { Requester } from '../store/requester.js';
import { dumpDaemon } from '../liveupdate/state-dump.js';
import { NO_SOCKETS, restoreDaemon } from '../liveupdate/state-restore.js';

export interface ScalingRow {
  nodes: number;
  /** Microseconds per operation (median of batches). */
  txStart: number;
  commit5: number;
  commit50: number;
  readDepth3: number;
  readDepth12: number;
  writeDepth3: number;
  writeDepth12: number;
  /** One DIRECTORY_PART request on a node with 10k children. */
  directoryPartCall: number;
  /** Every DIRECTORY_PART request needed to list that node. */
  directoryPartListing: number;
}

export interface StreamRow {
  nodes: number;
  bytes: number;
  dumpMs: number;
  restoreMs: number;
}

/** One WRITE that matches 10 watches while `watches` others are registered. */
export interface WatchMatchRow {
  watches: number;
  /** Microseconds per WRITE (median of batches). */
  writeUs: number;
}

export interface InProcResults {
  scaling: ScalingRow[];
  stream: StreamRow[];
  watchMatch: WatchMatchRow[];
}

const options = parseOptions(['--compat', '4.17'], { XENSTORED_RUNDIR: path.join(os.tmpdir(), 'xenstored-sim-bench', 'inproc') });

class Harness {
  readonly daemon = new Daemon(options, () => {});
  readonly client: Requester = this.daemon.store.addSocketClient();
  private populated = 0;

  /** Sends one request and returns the reply payload; throws on an ERROR reply. */
  request(type: number, payload: Buffer, txId = 0): Buffer {
    const answer = dispatch(this.daemon.store, this.client, this.daemon, { type, reqId: 0, txId, payload }, () => {});
    if (answer.frame.type === MessageType.ERROR) throw new Error(`request ${type} failed: ${answer.frame.payload.toString('latin1')}`);
    return answer.frame.payload;
  }

  write(path: string, value: string, txId = 0): void {
    this.request(MessageType.WRITE, Buffer.from(`${path}\0${value}`, 'latin1'), txId);
  }

  directoryPart(path: string, offset: number): Buffer {
    return this.request(MessageType.DIRECTORY_PART, Buffer.from(`${path}\0${offset}\0`, 'latin1'));
  }

  /** Lists `path` with DIRECTORY_PART as libxenstore does; returns how many requests it took. */
  listParts(path: string): number {
    let requests = 1;
    for (let offset = 0; ; requests++) {
      const reply = this.directoryPart(path, offset);
      if (reply[reply.length - 2] === 0) return requests;
      offset += reply.length - reply.indexOf(0) - 1;
    }
  }

  /** Grows the store to `total` nodes of 16-byte values, 100 per directory. */
  populateTo(total: number): void {
    for (let i = this.populated; i < total; i++) this.write(`/p/d${Math.floor(i / 100)}/n${i % 100}`, String(i).padStart(16, '0'));
    this.populated = total;
  }

  txStart(): number {
    const reply = this.request(MessageType.TRANSACTION_START, Buffer.from('\0'));
    return Number(reply.toString('latin1', 0, reply.length - 1));
  }

  txEnd(txId: number, commit: boolean): void {
    this.request(MessageType.TRANSACTION_END, Buffer.from(commit ? 'T\0' : 'F\0'), txId);
  }
}

/** CPU time of this process so far, in milliseconds. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median over `batches` of the microseconds per call of `op` (run `perBatch` times a batch). */
function timePerOp(batches: number, perBatch: number, op: (i: number) => void): number {
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = cpuMs();
    for (let i = 0; i < perBatch; i++) op(i);
    samples.push(((cpuMs() - t0) * 1000) / perBatch);
  }
  return medianOf(samples);
}

const DEEP3 = '/p/d5/n5';
const DEEP12 = '/deep/a/b/c/d/e/f/g/h/i/j/k';

function scaling(h: Harness, nodes: number): ScalingRow {
  const ops = (name: string) => `/ops/${name}`;
  const started: number[] = [];
  const txStart = timePerOp(5, 200, () => started.push(h.txStart()));
  for (const id of started) h.txEnd(id, false);

  // Commit time alone, for transactions that wrote 5 or 50 existing nodes.
  const commit = (touched: number): number => {
    for (let k = 0; k < touched; k++) h.write(ops(`c${k}`), 'x');
    const samples: number[] = [];
    for (let b = 0; b < 200; b++) {
      const id = h.txStart();
      for (let k = 0; k < touched; k++) h.write(ops(`c${k}`), `v${b}`, id);
      const t0 = cpuMs();
      h.txEnd(id, true);
      samples.push((cpuMs() - t0) * 1000);
    }
    return medianOf(samples);
  };

  h.write(DEEP12, 'x');
  const read = (p: string) => timePerOp(5, 2000, () => h.request(MessageType.READ, Buffer.from(`${p}\0`, 'latin1')));
  const write = (p: string) => timePerOp(5, 2000, (i) => h.write(p, `value-${i}`));

  // DIRECTORY_PART on a node with 10k children, as libxenstore lists it.
  if (!h.daemon.store.lookup('/big')) for (let i = 0; i < 10_000; i++) h.write(`/big/child-${i}`, '');
  const part = (offset: number) => h.directoryPart('/big', offset);
  return {
    nodes,
    txStart,
    commit5: commit(5),
    commit50: commit(50),
    readDepth3: read(DEEP3),
    readDepth12: read(DEEP12),
    writeDepth3: write(DEEP3),
    writeDepth12: write(DEEP12),
    directoryPartCall: timePerOp(5, 500, (i) => part((i * 997) % 40_000)),
    directoryPartListing: timePerOp(5, 20, () => h.listParts('/big')),
  };
}

function stream(h: Harness, nodes: number): StreamRow {
  const dumps: number[] = [];
  const restores: number[] = [];
  let bytes = 0;
  for (let run = 0; run < 5; run++) {
    let t0 = cpuMs();
    const data = dumpDaemon(h.daemon, { version: 2 });
    dumps.push(cpuMs() - t0);
    bytes = data.length;
    t0 = cpuMs();
    restoreDaemon(options, data, NO_SOCKETS, () => {});
    restores.push(cpuMs() - t0);
  }
  return { nodes, bytes, dumpMs: medianOf(dumps), restoreMs: medianOf(restores) };
}

/**
 * A WRITE to /hot/x, watched by 10 clients, while 100 other clients hold
 * `others` watches spread over paths the write does not touch.
 */
function watchMatch(others: number): WatchMatchRow {
  const h = new Harness();
  const { store } = h.daemon;
  const watch = (client: Requester, path: string, token: string) => store.watch(client, { path, token, relativeTo: undefined, depth: undefined });
  const clients = Array.from({ length: 100 }, () => store.addSocketClient());
  for (let i = 0; i < others; i++) watch(clients[i % 100]!, `/cold/c${i % 100}/n${Math.floor(i / 100)}`, `t${i}`);
  for (let i = 0; i < 10; i++) watch(clients[i * 7]!, '/hot', `hot${i}`);
  h.write('/hot/x', 'warm-up');
  return { watches: others, writeUs: timePerOp(5, 2000, (i) => h.write('/hot/x', `v${i}`)) };
}

/**
 * Requests libxenstore sends, one after another, to list a node with
 * `children` children named as xsclient names them: a DIRECTORY refused
 * with E2BIG, then the parts.
 */
export function listingRequests(children: number): number {
  const h = new Harness();
  for (let i = 0; i < children; i++) h.write(`/list/${i}`, '');
  return 1 + h.listParts('/list');
}

export function runInProcess(quick: boolean): InProcResults {
  const h = new Harness();
  const results: InProcResults = { scaling: [], stream: [], watchMatch: [] };
  watchMatch(1000); // untimed: the first rows would otherwise time the JIT's warm-up
  for (const others of [1000, 10_000, 100_000]) results.watchMatch.push(watchMatch(others));
  const sizes = quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
  for (const size of sizes) {
    h.populateTo(size);
    // Operation costs at the smallest and the largest store; one untimed
    // pass first, so the first row is not measuring the JIT's warm-up.
    if (size === sizes[0]) scaling(h, size);
    if (size === sizes[0] || size === sizes[sizes.length - 1]) results.scaling.push(scaling(h, size));
    results.stream.push(stream(h, size));
  }
  return results;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  process.stdout.write(`${JSON.stringify(runInProcess(process.argv[2] === 'quick'))}\n`);
}
