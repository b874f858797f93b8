/**
 * The testing kit's costs: a fresh in-process daemon up to its first reply
 * (target 2 ms, so one daemon per property run is affordable), and
 * snapshot() of a large store (target 500k nodes/s). The stores are
 * restored from a generated stream, so filling them costs no round trips.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeStream } from '../stream/stream-writer.js';
import type { StreamRecord } from '../stream/records.js';
import { startSim } from '../testing/start-sim.js';
import { snapshotOfStream } from '../testing/snapshot.js';
import { median } from './report.js';

export interface KitResults {
  /** startSim() + client() + the first READ's reply + stop(), ms: the first one, then the median of the rest. */
  startFirstMs: number;
  startMedianMs: number;
  starts: number;
  snapshots: { nodes: number; handleMs: number; streamMs: number }[];
}

const owner = [{ perm: 'n' as const, stale: false, domid: 0 }];
const node = (p: string, value = ''): StreamRecord => ({ kind: 'node', connId: 0, txId: 0, path: p, value: Buffer.from(value), access: 0, perms: owner });

/** A stream of `count` nodes: the initial tree and /bench/<i / 1000>/<i % 1000>. */
function storeStream(count: number): Buffer {
  const records: StreamRecord[] = [{ kind: 'global', socketFd: -1, evtchnFd: -1 }, node('/'), node('/tool'), node('/tool/xenstored'), node('/bench')];
  for (let i = 0; records.length - 1 < count; i++) {
    if (i % 1000 === 0) records.push(node(`/bench/${i / 1000}`));
    records.push(node(`/bench/${Math.floor(i / 1000)}/${i % 1000}`, `value-${i}`));
  }
  return encodeStream({ version: 2, bigEndian: false }, records);
}

async function startToFirstReply(): Promise<number> {
  const t0 = performance.now();
  const sim = await startSim();
  const client = await sim.client();
  await client.read('/tool/xenstored');
  const ms = performance.now() - t0;
  await sim.stop();
  return ms;
}

export async function measureKit(sizes: readonly number[], starts: number): Promise<KitResults> {
  const startMs: number[] = [];
  for (let i = 0; i < starts; i++) startMs.push(await startToFirstReply());
  const snapshots: KitResults['snapshots'] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-kit-bench-'));
  try {
    for (const nodes of sizes) {
      const file = path.join(dir, `store-${nodes}`);
      fs.writeFileSync(file, storeStream(nodes));
      const sim = await startSim({ args: ['--restore', file] });
      const handleMs: number[] = [];
      const streamMs: number[] = [];
      for (let run = 0; run < 5; run++) {
        let t0 = performance.now();
        await sim.snapshot();
        handleMs.push(performance.now() - t0);
        const stream = await sim.dump();
        t0 = performance.now();
        snapshotOfStream(stream);
        streamMs.push(performance.now() - t0);
      }
      await sim.stop();
      snapshots.push({ nodes, handleMs: median(handleMs), streamMs: median(streamMs) });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { startFirstMs: startMs[0]!, startMedianMs: median(startMs.slice(1)), starts, snapshots };
}

export function kitSection(res: KitResults): string {
  const rate = (nodes: number, ms: number) => `${Math.round(nodes / (ms / 1000) / 1000)}k`;
  return [
    '## The testing kit (xenstored-sim/testing, in process)',
    '',
    `\`startSim()\` + \`client()\` + the first READ's reply + \`stop()\`: ${res.startMedianMs.toFixed(2)} ms (median of ${res.starts - 1}; the very first, with module loading and a cold JIT: ${res.startFirstMs.toFixed(1)} ms). Target: 2 ms.`,
    '',
    '`snapshot()` of a running in-process daemon (built from the store\'s saved values) and of a stream already in hand (decode), median of 5. Target: 500k nodes/s.',
    '',
    '| nodes | handle.snapshot() (ms) | nodes/s | snapshot(stream) (ms) | nodes/s |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...res.snapshots.map((s) => `| ${s.nodes} | ${s.handleMs.toFixed(1)} | ${rate(s.nodes, s.handleMs)} | ${s.streamMs.toFixed(1)} | ${rate(s.nodes, s.streamMs)} |`),
  ].join('\n');
}

// `node dist/bench/testing-kit.js`: these rows alone.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  measureKit([10_000, 100_000], 50).then((res) => console.log(kitSection(res)));
}
