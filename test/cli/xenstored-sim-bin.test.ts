/**
 * The `xenstored-sim` executable as `npm start` and a live update run it:
 * straight through its #! line, which gives node the small young
 * generation the memory figures depend on.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SIM_CLI } from '../helpers/sim-daemon.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

describe('the xenstored-sim executable', () => {
  it('runs by its #! line with node --max-semi-space-size=1', async () => {
    expect(fs.statSync(SIM_CLI).mode & 0o111, 'dist/cli/xenstored-sim.js is executable').not.toBe(0);
    const rundir = fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'xs-bin-'));
    const child = spawn(SIM_CLI, [], { env: { ...process.env, XENSTORED_RUNDIR: rundir }, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => {
      child.kill('SIGKILL');
      fs.rmSync(rundir, { recursive: true, force: true });
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code} before its XENSTORED_PATH line`)));
    });
    expect(line).toBe(`XENSTORED_PATH=${path.join(rundir, 'socket')}`);
    const argv = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain('--max-semi-space-size=1');
    expect(argv).toContain(SIM_CLI);
  });
});
