/**
 * `xenstored-sim control` does what Xen's xenstore-control does: the same
 * output and exit status, command for command, against C xenstored 4.17
 * and against the simulator (xenstore-control from the kit is the reference).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCXenstored, type CXenstored } from '../helpers/c-xenstored.js';
import { findKit, XS_REF_HOME } from '../helpers/requirements.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';

const KIT = findKit('xenstore-control.sh');

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(socket: string, cmd: string, args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, XENSTORED_PATH: socket, XS_REF_HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const xenstoreControl = (socket: string, args: string[]) => {
  if (!KIT) throw new Error('the xenstored-ref kit (xenstore-control.sh) was not found; set XS_REF_KIT');
  return run(socket, path.join(KIT, 'xenstore-control.sh'), args);
};
const simControl = (socket: string, args: string[]) => run(socket, process.execPath, [SIM_CLI, 'control', ...args]);

/** Commands whose answers do not change from one call to the next. */
const COMMANDS: string[][] = [
  ['help'],
  ['print', 'from the control test'],
  ['no-such-command'],
  ['quota'],
  ['quota', '0'],
  ['log', 'off'],
  ['live-update'],
  ['live-update', '-t'],
  ['live-update', '/no/such/binary'],
];

let c: CXenstored;
let sim: SimDaemon;

beforeAll(async () => {
  [c, sim] = await Promise.all([startCXenstored(), startSim({ args: ['--compat', '4.17'] })]);
});

afterAll(async () => {
  await Promise.all([c?.stop(), sim?.stop()]);
});

describe('xenstored-sim control', () => {
  for (const args of COMMANDS) {
    it(`answers "${args.join(' ')}" as xenstore-control does, against C xenstored 4.17 and the simulator`, async () => {
      for (const socket of [c.socketPath, sim.socketPath]) {
        const [theirs, ours] = await Promise.all([xenstoreControl(socket, args), simControl(socket, args)]);
        expect(ours).toEqual(theirs);
      }
    });
  }

  it('runs a whole live update of the simulator (-f, then -s), which keeps its pid and tree', async () => {
    const lu = await startSim();
    try {
      await run(lu.socketPath, 'xenstore-write', ['/kept', 'across']);
      expect(await simControl(lu.socketPath, ['live-update', SIM_CLI])).toEqual({ code: 0, stdout: '', stderr: '' });
      expect((await run(lu.socketPath, 'xenstore-read', ['/kept'])).stdout).toBe('across\n');
      expect(() => process.kill(lu.pid, 0), 'the same process serves on').not.toThrow();
      expect(lu.stderr()).toContain('live update: restored');
    } finally {
      await lu.stop();
    }
  });

  it('says why when no daemon listens', async () => {
    const out = await simControl(path.join(sim.rundir, 'nobody-here'), ['help']);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^xenstored-sim control: cannot connect to xenstored at .*nobody-here/);
  });
});
