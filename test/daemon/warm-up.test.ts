/**
 * The warm-up (src/daemon/warm-up.ts) sends requests to a scratch daemon
 * while the real one is idle. None of it may show: a daemon that warmed up
 * answers every request, sends every watch event and trace line, and ends
 * with the same state, generation counter and memory accounting as a twin
 * started without --warm-up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions, scratchOptions } from '../../src/daemon/options.js';
import { WARM_UP_REQUESTS, warmUp, type WarmUpHost } from '../../src/daemon/warm-up.js';
import { operationSequences } from '../../src/testing/arbitraries.js';
import { diffSnapshots } from '../../src/testing/diff.js';
import { describeOperation } from '../../src/testing/operations.js';
import { openWorld, sendOperation, type SimWorld } from '../../src/testing/live-update-property.js';
import { startSimWithDaemon, type InProcessSim } from '../../src/testing/start-sim.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function started(args: string[]): Promise<InProcessSim> {
  const sim = await startSimWithDaemon({ args });
  cleanups.push(() => sim.handle.stop());
  return sim;
}

/** Trace lines without their time stamps. */
function traceLines(file: string): string[] {
  return fs.readFileSync(file, 'latin1').trimEnd().split('\n').map((l) => l.replace(/ \d{4}-\d\d-\d\dT[\d:.]+Z/, ''));
}

/** The daemon's memory report without the process's own figures (RSS and heap differ between any two processes). */
const accounting = (daemon: Daemon) => ({
  report: daemon.memoryReport().replace(/, rss \d+ heap \d+$/, ''),
  generation: daemon.store.generation,
  quotaMaxSeen: [...daemon.quotaMaxSeen],
  connections: daemon.connections.size,
});

async function sameAnswers(twin: SimWorld, warmed: SimWorld, runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(operationSequences({ connections: 4, guests: [1, 2], maxLength: 12 }), async (ops) => {
      for (const op of ops) {
        const [expected, got] = await Promise.all([sendOperation(twin, op), sendOperation(warmed, op)]);
        expect(got, describeOperation(op)).toBe(expected);
      }
      // Leave gaps, so that warm-up batches fall between the requests.
      await new Promise((r) => setTimeout(r, 10));
    }),
    { numRuns: runs },
  );
}

describe('the warm-up', () => {
  // First in this file: a process warms up once, so this daemon is the one that does.
  it('changes nothing a client, the trace or the accounting can see', async () => {
    const traces = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-warm-up-trace-'));
    cleanups.push(() => fs.rmSync(traces, { recursive: true, force: true }));
    const warmed = await started(['-T', path.join(traces, 'warmed'), '--warm-up']);
    const twin = await started(['-T', path.join(traces, 'twin')]);
    const [w, t] = [await openWorld(warmed.handle), await openWorld(twin.handle)];

    await sameAnswers(t, w, 15);
    expect(await warmed.daemon().warmedUp).toBe(WARM_UP_REQUESTS);
    expect(await twin.daemon().warmedUp).toBe(0);
    await sameAnswers(t, w, 15);

    expect(w.events).toEqual(t.events);
    expect(diffSnapshots(await twin.handle.snapshot({ generations: true }), await warmed.handle.snapshot({ generations: true }))).toEqual([]);
    expect(accounting(warmed.daemon())).toEqual(accounting(twin.daemon()));
    expect(traceLines(path.join(traces, 'warmed'))).toEqual(traceLines(path.join(traces, 'twin')));
  });

  it('runs once per process', async () => {
    const sim = await started(['--warm-up']);
    expect(await sim.daemon().warmedUp).toBe(0);
  });

  it('waits while clients are active, and stops when its daemon does', async () => {
    const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-warm-up-'));
    cleanups.push(() => fs.rmSync(rundir, { recursive: true, force: true }));
    const scratch = new Daemon(scratchOptions(parseOptions([], { XENSTORED_RUNDIR: rundir })), () => {});
    // dom0's ring connection only, until the warm-up connects.
    expect(scratch.connections.size).toBe(1);
    let received = 0;
    let busy = true;
    const host: WarmUpHost & { stopped: boolean } = {
      // While busy, every look sees a client's new input.
      get requestsReceived() {
        return busy ? ++received : received;
      },
      stopped: false,
    };
    const done = warmUp(host, () => (socket) => scratch.acceptSocket(socket));
    await waitFor('the warm-up to look at the host a few times', () => received > 20);
    expect(scratch.requestsReceived).toBe(0);

    busy = false;
    await waitFor('the first batch once the host is quiet', () => scratch.requestsReceived > 0);
    host.stopped = true;
    const answered = await done;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(WARM_UP_REQUESTS);
    // Its connection to the scratch daemon is closed, and the scratch daemon let go of it.
    await waitFor('the scratch daemon to let go of the connection', () => scratch.connections.size === 1);
  });

  it('does not run when the daemon stops before it starts', async () => {
    const host = { requestsReceived: 0, stopped: true };
    let made = false;
    expect(await warmUp(host, () => {
      made = true;
      return () => {};
    })).toBe(0);
    expect(made).toBe(false);
  });
});

describe('scratchOptions', () => {
  it('keeps the store settings and drops everything visible', () => {
    const options = parseOptions(['--compat', '4.17', '-T', '/tmp/t', '-F', '/tmp/p', '-V', '--ui', '0', '-Q', 'nodes=7', '--explicit-domains'], { XENSTORED_RUNDIR: '/tmp/r' });
    expect(scratchOptions(options)).toEqual({ ...options, traceFile: undefined, pidFile: undefined, verbose: false, ui: undefined, warmUp: false });
  });
});
