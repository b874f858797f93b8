/**
 * `xenstored-sim shell`: its commands against a running simulator, as the
 * Shell object answers them, and the real program reading a script from
 * its standard input.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XsClient } from '../../src/client/index.js';
import { Shell, words } from '../../src/ui/shell.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';

let sim: SimDaemon;
let dom0: XsClient;

beforeAll(async () => {
  sim = await startSim();
  dom0 = await XsClient.connect(sim.socketPath);
  await dom0.mkdir('/local/domain/3');
  await dom0.setPerms('/local/domain/3', ['n3']);
  await dom0.introduce(3, 0, 1);
});

afterAll(async () => {
  await dom0?.close();
  await sim?.stop();
});

async function openShell(): Promise<{ shell: Shell; notes: string[] }> {
  const notes: string[] = [];
  const shell = await Shell.open(sim.socketPath, (t) => notes.push(t));
  return { shell, notes };
}

describe('the shell', () => {
  it('splits words, keeping quoted spaces', () => {
    expect(words('write a "two words" \\"x')).toEqual(['write', 'a', 'two words', '\\"x']);
    expect(words('  ')).toEqual([]);
  });

  it('writes, reads, lists and removes relative to the current directory', async () => {
    const { shell } = await openShell();
    expect(await shell.execute('mkdir /sh')).toBe('');
    expect(await shell.execute('cd /sh')).toBe('');
    expect(shell.prompt).toBe('/sh> ');
    expect(await shell.execute('write a hello there')).toBe('');
    expect(await shell.execute('write b "quoted  value"')).toBe('');
    expect(await shell.execute('read a')).toBe('hello there\n');
    expect(await shell.execute('ls')).toBe('a = "hello there"\nb = "quoted  value"\n');
    expect(await shell.execute('cd ..')).toBe('');
    expect(await shell.execute('pwd')).toBe('/\n');
    expect(await shell.execute('rm sh/b')).toBe('');
    expect(await shell.execute('read /sh/b')).toBe('ENOENT\n');
    expect(await shell.execute('cd /nowhere')).toBe('ENOENT\n');
    expect(await shell.execute('frobnicate')).toBe('unknown command frobnicate; try help\n');
    await shell.close();
  });

  it('shows and sets permissions', async () => {
    const { shell } = await openShell();
    await shell.execute('write /shp x');
    expect(await shell.execute('perms /shp')).toBe('n0\n');
    expect(await shell.execute('perms /shp n0 r3')).toBe('n0 r3\n');
    expect(await shell.execute('perms /shp bad')).toBe('EINVAL\n');
    await shell.close();
  });

  it('reports watch events as they come', async () => {
    const { shell, notes } = await openShell();
    expect(await shell.execute('watch /shw tok')).toBe('');
    await dom0.write('/shw/x', '1');
    await expect.poll(() => notes).toContain('watch tok: /shw/x\n');
    await shell.close();
  });

  it('works in a transaction, and a conflicting write makes the commit fail with EAGAIN', async () => {
    const { shell } = await openShell();
    await dom0.write('/sht', 'before');
    expect(await shell.execute('tx')).toMatch(/^transaction \d+ started\n$/);
    expect(shell.prompt).toMatch(/^\/ \[tx \d+\]> $/);
    expect(await shell.execute('read /sht')).toBe('before\n');
    expect(await shell.execute('write /sht mine')).toBe('');
    await dom0.write('/sht', 'theirs');
    expect(await shell.execute('tx commit')).toBe('EAGAIN\n');
    expect(shell.prompt).toBe('/> ');
    expect(await shell.execute('read /sht')).toBe('theirs\n');
    await shell.close();
  });

  it('acts as a guest through its own connection, with its home as the current directory', async () => {
    const { shell } = await openShell();
    expect(await shell.execute('as 3')).toBe('acting as domain 3\n');
    expect(shell.prompt).toBe('dom3 /local/domain/3> ');
    expect(await shell.execute('write name three')).toBe('');
    expect((await dom0.read('/local/domain/3/name')).toString()).toBe('three');
    expect(await shell.execute('read /tool/xenstored')).toBe('EACCES\n');
    expect(await shell.execute('as 0')).toBe('acting as domain 0\n');
    await shell.close();
  });

  it('completes paths', async () => {
    const { shell } = await openShell();
    await dom0.write('/shc/alpha', '');
    await dom0.write('/shc/alps', '');
    await dom0.write('/shc/beta', '');
    expect(await shell.complete('read /shc/al')).toEqual([['/shc/alpha', '/shc/alps'], '/shc/al']);
    await shell.execute('cd /shc');
    expect(await shell.complete('ls b')).toEqual([['beta'], 'b']);
    await shell.close();
  });

  it('runs CONTROL commands', async () => {
    const { shell } = await openShell();
    expect(await shell.execute('control print hi')).toBe('OK\n');
    expect(await shell.execute('control no-such')).toMatch(/^Command not supported\. Valid commands are:\n[\s\S]*\(exit status 3\)\n$/);
    await shell.close();
  });

  it('is a program: reads commands from stdin and prints the answers', async () => {
    const history = path.join(sim.rundir, 'history');
    const child = spawn(process.execPath, [SIM_CLI, 'shell'], {
      env: { ...process.env, XENSTORED_PATH: sim.socketPath, XENSTORED_SIM_HISTORY: history }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stdin.end('write /shprog piped\nread /shprog\nexit\n');
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(out).toContain('piped\n');
    expect((await dom0.read('/shprog')).toString()).toBe('piped');
  });
});
