/**
 * Live update when the hand-over goes wrong, against the real daemon
 * process (dist/cli/xenstored-sim.js) and raw clients sending CONTROL
 * live-update as xenstore-control does:
 *
 *  - two dom0 clients ask for an update within the dry-run window: the
 *    second gets C's "session already active" answer, nothing hangs;
 *  - a dry run that never ends is killed when the -t timeout runs out;
 *  - a new image that passes the dry run but then exits, hangs, or finds
 *    state_dump damaged (truncated, or one byte of a value flipped, which
 *    the simulator's checksum record catches): the previous image comes
 *    back with the whole state and every client still connected.
 *
 * The "images" are small shell scripts in front of the real CLI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dumpDaemon } from '../../src/liveupdate/state-dump.js';
import { NO_SOCKETS, restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { connect as connectInProcess, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { SIM_CLI, startSim, type SimDaemon, StartedDaemons } from '../helpers/sim-daemon.js';

tearDownAfterEach();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (s: string) => `${s}\0`;

const started = new StartedDaemons('SIGKILL');
const { sims, clients, pidFiles } = started;
afterEach(() => started.stopAll());

async function start(env: NodeJS.ProcessEnv = {}): Promise<{ sim: SimDaemon; pidFile: string }> {
  const rundir = fs.mkdtempSync('/tmp/xs-luf-');
  const pidFile = path.join(rundir, 'xenstored.pid');
  const sim = await startSim({ rundir, args: ['-F', pidFile], env });
  sims.push(sim);
  pidFiles.push(pidFile);
  return { sim, pidFile };
}

async function connect(socketPath: string): Promise<WireClient> {
  const c = await WireClient.connect(socketPath);
  clients.push(c);
  return c;
}

/** A new image: `dryRun` and `forReal` are shell lines run before the real CLI takes over (with "$@"). */
function image(dir: string, name: string, dryRun: string, forReal: string): string {
  const file = path.join(dir, `${name}.sh`);
  const real = `exec '${process.execPath}' '${SIM_CLI}' "$@"`;
  fs.writeFileSync(file, [
    '#!/bin/sh',
    'for a; do [ "$a" = --check-stream ] && dry=1; done',
    `if [ -n "$dry" ]; then ${dryRun}; ${real}; fi`,
    forReal,
    real,
    '',
  ].join('\n'), { mode: 0o755 });
  return file;
}

const control = (c: WireClient, ...args: string[]) => c.call(T.CONTROL, `live-update\0${args.join('\0')}\0`);

/** Some state: nodes, a watch, an open transaction with a write in it. */
async function populate(c: WireClient): Promise<number> {
  for (let i = 0; i < 50; i++) expect((await c.call(T.WRITE, `/keep/n${i}\0precious-value-${i}`)).text).toBe(text('OK'));
  expect((await c.call(T.WATCH, '/keep\0w\0')).text).toBe(text('OK'));
  expect(await c.event()).toBe('/keep\0w\0');
  const tx = Number((await c.call(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
  expect((await c.call(T.WRITE, '/keep/tx\0in-tx', tx)).text).toBe(text('OK'));
  return tx;
}

/** Everything `populate` made is there and alive on the same connection. */
async function expectIntact(c: WireClient, tx: number): Promise<void> {
  for (let i = 0; i < 50; i++) expect((await c.call(T.READ, `/keep/n${i}\0`)).text).toBe(`precious-value-${i}`);
  expect((await c.call(T.TRANSACTION_END, 'T\0', tx)).text).toBe(text('OK'));
  expect(await c.event()).toBe('/keep/tx\0w\0');
  expect((await c.call(T.READ, '/keep/tx\0')).text).toBe('in-tx');
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
};

/**
 * Sends `-f` and `-s` for an image whose dry run holds on until released,
 * and returns once that dry run runs: the update is inside its dry-run
 * window for as long as the test needs, whatever the machine's load.
 */
async function updateHeldInDryRun(sim: SimDaemon, c: WireClient): Promise<{ request: number; release: () => void }> {
  const running = path.join(sim.rundir, 'dry-run-running');
  const gate = path.join(sim.rundir, 'dry-run-may-end');
  const held = image(sim.rundir, 'held', `touch '${running}'; while [ ! -e '${gate}' ]; do sleep 0.05; done`, ':');
  expect((await control(c, '-f', held)).text).toBe(text('OK'));
  const request = c.send(T.CONTROL, 'live-update\0-s\0');
  await waitFor('the dry run to start', () => fs.existsSync(running));
  return { request, release: () => fs.writeFileSync(gate, '') };
}

describe('live update: two at once', () => {
  it('a second client within the dry-run window gets C’s busy answer; the first update completes', async () => {
    const { sim } = await start();
    const a = await connect(sim.socketPath);
    const b = await connect(sim.socketPath);
    const tx = await populate(a);
    const update = await updateHeldInDryRun(sim, a);
    expect((await control(b, '-f', SIM_CLI)).text).toBe(text('live-update session already active.'));
    expect((await control(b, '-s')).text).toBe(text('Not in live-update session.'));
    update.release();
    const reply = await a.take((f) => f.reqId === update.request && f.type === T.CONTROL, 20_000);
    expect(reply.payload.toString('latin1')).toBe(text('OK'));
    expect((await control(b, '-a')).text).toBe(text('No live-update session active.'));
    await expectIntact(a, tx);
  }, 60_000);

  it('-a from another client during the dry run cancels the update', async () => {
    const { sim } = await start();
    const a = await connect(sim.socketPath);
    const b = await connect(sim.socketPath);
    const tx = await populate(a);
    const update = await updateHeldInDryRun(sim, a);
    expect((await control(b, '-a')).text).toBe(text('OK'));
    update.release();
    const reply = await a.take((f) => f.reqId === update.request && f.type === T.CONTROL, 20_000);
    expect(reply.payload.toString('latin1')).toBe(text('Cancellation was requested'));
    expect(sim.stderr()).not.toContain('restored');
    await expectIntact(a, tx);
  }, 60_000);
});

describe('live update: bounded by -t, falling back to the previous image', () => {
  it('a dry run that never ends is killed at the timeout; the old image keeps serving', async () => {
    const { sim } = await start();
    const pidOfDryRun = path.join(sim.rundir, 'dry-run.pid');
    const hanging = image(sim.rundir, 'hang-dry', `echo $$ > '${pidOfDryRun}'; exec sleep 600`, ':');
    const c = await connect(sim.socketPath);
    const tx = await populate(c);
    expect((await control(c, '-f', hanging)).text).toBe(text('OK'));
    expect((await control(c, '-s', '-t', '1')).text).toBe(text('Error activating new binary.'));
    const child = Number(fs.readFileSync(pidOfDryRun, 'utf8'));
    await waitFor('the dry run to be killed', () => !alive(child));
    expect(sim.stderr()).toContain('no answer within 1000 ms');
    await expectIntact(c, tx);
  }, 60_000);

  const failures: [string, (rundir: string) => string, NodeJS.ProcessEnv?][] = [
    ['exits', () => 'exit 3'],
    ['exits (hand-over by spawn, no re-exec addon)', () => 'exit 3', { XENSTORED_SIM_NO_NATIVE: '1' }],
    ['hangs', () => 'exec sleep 600'],
    ['finds state_dump truncated', (rundir) => `truncate -s 1000 '${rundir}/state_dump'`],
    ['finds a byte of a value flipped in state_dump', (rundir) =>
      `'${process.execPath}' -e "const f='${rundir}/state_dump', b=require('fs').readFileSync(f), i=b.indexOf('precious-value-7'); b[i]^=1; require('fs').writeFileSync(f, b)"`],
  ];
  for (const [what, forReal, env] of failures) {
    it(`a new image that passes the dry run but ${what}: the previous image serves the whole state`, async () => {
      const { sim, pidFile } = await start(env);
      const bad = image(sim.rundir, 'bad', ':', forReal(sim.rundir));
      const c = await connect(sim.socketPath);
      const other = await connect(sim.socketPath);
      const tx = await populate(c);
      expect((await control(c, '-f', bad)).text).toBe(text('OK'));
      // The -s reply travels in the state, so the previous image sends it.
      expect((await control(c, '-s', '-t', '2')).text).toBe(text('OK'));
      await expectIntact(c, tx);
      expect((await other.call(T.READ, '/keep/n7\0')).text).toBe('precious-value-7');
      expect(sim.stderr()).toContain('into the previous image');
      const holder = Number(fs.readFileSync(pidFile, 'utf8'));
      expect(alive(holder)).toBe(true);
      // The run directory stays locked through the fallback: another daemon is refused.
      const rival = spawnSync(process.execPath, [SIM_CLI], { env: { ...process.env, ...env, XENSTORED_RUNDIR: sim.rundir }, encoding: 'utf8', timeout: 20_000 });
      expect({ status: rival.status, refused: rival.stderr.includes(`a daemon (pid ${holder}) is already running in ${sim.rundir}`) }).toEqual({ status: 1, refused: true });
      // Still able to update, to the real image this time.
      expect((await control(c, '-f', SIM_CLI)).text).toBe(text('OK'));
      expect((await control(c, '-s')).text).toBe(text('OK'));
      expect((await c.call(T.READ, '/keep/n7\0')).text).toBe('precious-value-7');
    }, 60_000);
  }
});

describe('the simulator’s checksum record', () => {
  it('a flipped byte in a value makes restore refuse the stream', async () => {
    const d = await startDaemon();
    const c = await connectInProcess(d.options.socketPath);
    expect((await c.call(T.WRITE, '/a\0some-value')).text).toBe(text('OK'));
    const stream = Buffer.from(dumpDaemon(d, { version: 2 }));
    expect(() => restoreDaemon(d.options, stream, NO_SOCKETS)).not.toThrow();
    const at = stream.indexOf('some-value');
    stream[at] = stream[at]! ^ 1;
    expect(() => restoreDaemon(d.options, stream, NO_SOCKETS)).toThrow(/checksum/);
  });
});
