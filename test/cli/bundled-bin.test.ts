/**
 * The `xenstored-sim` bin that `npm run build` bundles (scripts/bundle-cli.mjs):
 * a daemon must come up from that one CommonJS file, with no other module of
 * ours loaded, and stay so across a live update by real re-exec, while the
 * code split off it (here `control`) still loads when used. A bundle that
 * drops a module, loads the ES modules of dist/ again or breaks the re-exec
 * fails here rather than only in the start-up figures.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reexecAvailable } from '../../src/liveupdate/exec-image.js';
import { spawnDaemon, type SpawnedDaemon } from '../../src/testing/spawn-sim.js';
import { withConnection } from '../../src/testing/sim-handle.js';
import { SIM_CLI } from '../helpers/sim-daemon.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** Preloaded into every image: at exit, appends the files Node's CommonJS loader loaded, one JSON array a line. */
const RECORDER = `process.on('exit', () => require('node:fs').appendFileSync(process.env.XS_TEST_LOADED, JSON.stringify(Object.keys(require.cache)) + '\\n'));\n`;

const text = (reply: Buffer) => reply.toString('utf8').replace(/\0$/, '');

describe('the bundled xenstored-sim bin', () => {
  it('starts from one file, answers, runs `control` from its lazy chunk and live-updates in place', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-bundle-'));
    const recorder = path.join(dir, 'recorder.cjs');
    const loaded = path.join(dir, 'loaded');
    fs.writeFileSync(recorder, RECORDER);
    const rundir = path.join(dir, 'run');
    const pidFile = path.join(rundir, 'xenstored.pid');
    const daemon: SpawnedDaemon = await spawnDaemon(SIM_CLI, ['--pid-file', pidFile], {
      rundir,
      env: { NODE_OPTIONS: `--require ${recorder}`, XS_TEST_LOADED: loaded },
    });
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => daemon.stop());

    await withConnection(daemon.socketPath, async (xs) => {
      await xs.write('/bundle', 'before');
      for (const args of [['-f', SIM_CLI], ['-s']]) expect(text(await xs.control('live-update', ...args))).toBe('OK');
    });
    const help = execFileSync(process.execPath, [SIM_CLI, 'control', 'help'], {
      env: { ...process.env, XENSTORED_PATH: daemon.socketPath, NODE_OPTIONS: `--require ${recorder}`, XS_TEST_LOADED: loaded },
      encoding: 'utf8',
    });
    expect(help).toContain('live-update');
    expect(text(await withConnection(daemon.socketPath, (xs) => xs.read('/bundle')))).toBe('before');
    if (reexecAvailable()) expect(Number(fs.readFileSync(pidFile, 'utf8'))).toBe(daemon.pid);
    expect(daemon.stderr()).toContain('live update');
    await daemon.stop();

    // Our JavaScript each process loaded (the native addon aside), in the order
    // they ended: the update's dry run, the `control` client, the updated daemon.
    const images = fs.readFileSync(loaded, 'utf8').trim().split('\n')
      .map((line) => (JSON.parse(line) as string[]).filter((f) => f !== recorder && !f.endsWith('.node')));
    expect(images).toHaveLength(3);
    expect(images[0]).toEqual([SIM_CLI]);
    expect(images[1]).toContain(path.join(path.dirname(SIM_CLI), 'xenstored-sim-client-commands.js'));
    expect(images[2]).toEqual([SIM_CLI]);
  });
});
