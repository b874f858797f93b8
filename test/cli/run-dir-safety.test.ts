/**
 * What another local user can do to the daemon through the file system,
 * tried end to end through the CLI: the sockets and the files the daemon
 * writes are owner-only whatever the umask, a run directory another user
 * controls is refused, symbolic links planted in the run directory are
 * never followed, a live daemon's socket is never taken over, and a socket
 * path too long for a Unix socket is refused with a clear message.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WireClient } from '../../src/testing/wire-client.js';
import { CI } from '../helpers/requirements.js';
import { REPO_ROOT, SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { reexecAvailable, reexecUnavailableReason } from '../../src/liveupdate/exec-image.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';

const NOBODY = 65534;
const ROOT = process.geteuid?.() === 0;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function tempDir(mode = 0o700): string {
  const dir = fs.mkdtempSync(path.join('/tmp', 'xs-safe-'));
  fs.chmodSync(dir, mode);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function started(options: Parameters<typeof startSim>[0]): Promise<SimDaemon> {
  const sim = await startSim(options);
  cleanups.push(() => sim.stop());
  return sim;
}

async function dom0(sim: SimDaemon): Promise<WireClient> {
  const client = await WireClient.connect(sim.socketPath);
  cleanups.push(() => client.close());
  return client;
}

async function introduce(client: WireClient, domid: number): Promise<void> {
  expect((await client.call(T.INTRODUCE, `${domid}\x001\x007\0`)).text).toBe('OK\0');
}

/** Runs the CLI expecting it to refuse to start: its exit status and stderr (a daemon that starts anyway is killed). */
function refusedStart(env: NodeJS.ProcessEnv, args: string[] = []): { status: number | null; stderr: string } {
  const childEnv = { ...process.env, ...env };
  delete childEnv.XENSTORED_PATH;
  const r = spawnSync(process.execPath, [SIM_CLI, ...args], { cwd: REPO_ROOT, env: childEnv, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: r.stderr };
}

const mode = (file: string) => fs.lstatSync(file).mode & 0o7777;

/** What `connect` to `socketPath` gives for a process running as `uid`: its uid, then "connected" or the error code. */
function connectAs(uid: number, socketPath: string): Promise<string> {
  const script = `const net = require('net'); const s = net.connect(process.argv[1]);
    s.on('connect', () => { console.log(process.getuid(), 'connected'); s.destroy(); });
    s.on('error', (e) => console.log(process.getuid(), e.code));`;
  return new Promise((resolve, reject) => {
    // cwd /: the repository may be somewhere nobody cannot enter.
    const child = spawn(process.execPath, ['-e', script, socketPath], { uid, gid: uid, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', () => resolve(out.trim()));
  });
}

describe('modes whatever the umask (started under umask 000)', () => {
  it('main socket 0600, domain directory 0700 and its sockets 0600, pid file, run directory lock, dumps and logs 0600', async () => {
    const rundir = tempDir(0o755);
    const pidFile = path.join(rundir, 'pid');
    const sim = await started({ rundir, umask: 0, args: ['-F', pidFile] });
    const client = await dom0(sim);
    await introduce(client, 5);
    for (const command of ['dump\0all.xs\0', 'export-domain\x005\0dom5.xs\0', 'memreport\0mem.txt\0', 'logfile\0trace.log\0']) {
      expect((await client.call(T.CONTROL, command)).text).toBe('OK\0');
    }
    expect({
      socket: mode(sim.socketPath), domainDir: mode(path.join(rundir, 'domain')), domainSocket: mode(sim.domainSocket(5)), pid: mode(pidFile),
      lock: mode(path.join(rundir, 'xenstored.pid')), dump: mode(path.join(rundir, 'all.xs')), exported: mode(path.join(rundir, 'dom5.xs')), memreport: mode(path.join(rundir, 'mem.txt')), trace: mode(path.join(rundir, 'trace.log')),
    }).toEqual({ socket: 0o600, domainDir: 0o700, domainSocket: 0o600, pid: 0o600, lock: 0o600, dump: 0o600, exported: 0o600, memreport: 0o600, trace: 0o600 });
  });

  // Switching user needs root; CI runs as root, where this must run and pass.
  const crossUserIt = ROOT || CI ? it : it.skip;
  if (!ROOT && !CI) console.warn('!! SKIPPING the cross-user socket test: not root (with CI set it fails instead)');
  crossUserIt('another user cannot connect to the main socket or a domain socket, even through a searchable run directory', async () => {
    expect(ROOT, 'this test switches to uid nobody and must run as root').toBe(true);
    const rundir = tempDir(0o755);
    const sim = await started({ rundir, umask: 0 });
    await introduce(await dom0(sim), 5);
    fs.chmodSync(path.join(rundir, 'domain'), 0o755); // even so, the socket's own mode keeps nobody out
    expect(await connectAs(NOBODY, sim.socketPath)).toBe(`${NOBODY} EACCES`);
    expect(await connectAs(NOBODY, sim.domainSocket(5))).toBe(`${NOBODY} EACCES`);
    expect(await connectAs(0, sim.socketPath)).toBe('0 connected');
  });
});

describe('a run directory another user could control is refused, with what to do', () => {
  it('writable by others', () => {
    const rundir = tempDir(0o777);
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`run directory ${rundir} can be written by other users (mode 0777)`);
    expect(r.stderr).toContain('XENSTORED_RUNDIR');
    expect(fs.readdirSync(rundir)).toEqual([]);
  });

  it('a symbolic link', () => {
    const target = tempDir();
    const link = path.join(tempDir(), 'run');
    fs.symlinkSync(target, link);
    const r = refusedStart({ XENSTORED_RUNDIR: link });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`run directory ${link} is a symbolic link`);
    expect(fs.readdirSync(target)).toEqual([]);
  });

  const asRootIt = ROOT || CI ? it : it.skip;
  asRootIt('owned by another user (the default /tmp/xenstored-sim pre-created by someone else)', () => {
    expect(ROOT, 'chown needs root').toBe(true);
    const rundir = tempDir(0o700);
    fs.chownSync(rundir, NOBODY, NOBODY);
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`run directory ${rundir} belongs to uid ${NOBODY}, not to this user (uid 0)`);
    expect(fs.readdirSync(rundir)).toEqual([]);
  });

  it('inside a directory others can write without the sticky bit', () => {
    const parent = tempDir(0o777);
    const rundir = path.join(parent, 'run');
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`directory ${parent} (uid`);
    expect(r.stderr).toContain('can be changed by another user');
  });
});

describe('symbolic links planted in the run directory are not followed', () => {
  it('domain/ as a link: INTRODUCE neither removes nor binds anything through it', async () => {
    const rundir = tempDir();
    const victim = tempDir();
    fs.writeFileSync(path.join(victim, '5'), 'precious');
    fs.symlinkSync(victim, path.join(rundir, 'domain'));
    const sim = await started({ rundir });
    const client = await dom0(sim);
    await introduce(client, 5);
    expect((await client.call(T.READ, '/tool/xenstored\0')).type).toBe(T.READ); // still serving
    expect(fs.readFileSync(path.join(victim, '5'), 'utf8')).toBe('precious');
    expect(fs.readdirSync(victim)).toEqual(['5']);
    expect(sim.stderr()).toContain(`domain 5: cannot listen on ${sim.domainSocket(5)}: run directory ${path.join(rundir, 'domain')} is a symbolic link`);
  });

  it('pid file and dump targets as links: the link is replaced, its target untouched', async () => {
    const rundir = tempDir();
    const victim = path.join(tempDir(), 'victim');
    fs.writeFileSync(victim, 'precious');
    for (const name of ['pid', 'all.xs']) fs.symlinkSync(victim, path.join(rundir, name));
    const sim = await started({ rundir, args: ['-F', path.join(rundir, 'pid')] });
    expect((await (await dom0(sim)).call(T.CONTROL, 'dump\0all.xs\0')).text).toBe('OK\0');
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.readFileSync(path.join(rundir, 'pid'), 'utf8')).toBe(`${sim.pid}\n`);
    expect(fs.lstatSync(path.join(rundir, 'all.xs')).isFile()).toBe(true);
  });
});

describe('live update through a planted state_dump link', () => {
  // Without the re-exec addon the update hands over to a spawned process this test could not stop.
  const updateIt = reexecAvailable() || CI ? it : it.skip;
  updateIt('writes a new state_dump, leaves the link target alone, and the state survives', async () => {
    expect(reexecAvailable(), `re-exec in place: ${reexecUnavailableReason()}`).toBe(true);
    const rundir = tempDir();
    const victim = path.join(tempDir(), 'victim');
    fs.writeFileSync(victim, 'precious');
    fs.symlinkSync(victim, path.join(rundir, 'state_dump'));
    const sim = await started({ rundir });
    const client = await dom0(sim);
    expect((await client.call(T.WRITE, '/kept\0yes')).text).toBe('OK\0');
    expect((await client.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe('OK\0');
    expect((await client.call(T.CONTROL, 'live-update\0-s\0')).text).toBe('OK\0');
    expect((await client.call(T.READ, '/kept\0')).text).toBe('yes');
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
  });
});

describe('one daemon per socket', () => {
  // Run directories are locked (see run-dir-lock.test.ts); this is a daemon elsewhere given the same --socket.
  it('a second instance on the same socket refuses and leaves the first one reachable', async () => {
    const first = await started({ rundir: tempDir() });
    const r = refusedStart({ XENSTORED_RUNDIR: tempDir() }, ['--socket', first.socketPath]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`a daemon is already listening on ${first.socketPath}: stop it first`);
    const client = await dom0(first);
    expect((await client.call(T.WRITE, '/still\0here')).text).toBe('OK\0');
  });

  it('a regular file at the socket path is left alone', () => {
    const rundir = tempDir();
    fs.writeFileSync(path.join(rundir, 'socket'), 'not a socket');
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${path.join(rundir, 'socket')} exists and is not a socket; it is left alone`);
    expect(fs.readFileSync(path.join(rundir, 'socket'), 'utf8')).toBe('not a socket');
  });

  it('a stale socket (its daemon died) is replaced', async () => {
    const rundir = tempDir();
    const socketPath = path.join(rundir, 'socket');
    // A process that binds and exits without unlinking leaves a stale socket.
    const py = spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
    expect(py.status).toBe(0);
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    const sim = await started({ rundir });
    expect((await (await dom0(sim)).call(T.WRITE, '/fresh\0yes')).text).toBe('OK\0');
  });
});

describe('socket paths too long for a Unix socket', () => {
  const noStackTrace = (stderr: string) => expect(stderr).not.toMatch(/^\s+at /m);

  it('a run directory whose socket path exceeds 107 bytes is refused before anything is created', () => {
    const base = tempDir();
    const rundir = path.join(base, 'r'.repeat(120 - base.length));
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`socket path ${path.join(rundir, 'socket')} is ${Buffer.byteLength(path.join(rundir, 'socket'))} bytes long, but a Unix socket path can have at most 107`);
    noStackTrace(r.stderr);
    expect(fs.existsSync(rundir)).toBe(false);
  });

  it('also when only the guest domain sockets (<rundir>/domain/<domid>) would be too long', () => {
    const base = tempDir();
    const rundir = path.join(base, 'r'.repeat(95 - base.length));
    expect(Buffer.byteLength(path.join(rundir, 'socket'))).toBeLessThanOrEqual(107);
    const r = refusedStart({ XENSTORED_RUNDIR: rundir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`socket path ${path.join(rundir, 'domain', '32751')} is`);
    noStackTrace(r.stderr);
  });

  it('--socket too long', () => {
    const long = path.join(tempDir(), `${'s'.repeat(110)}.sock`);
    const r = refusedStart({ XENSTORED_RUNDIR: tempDir() }, ['--socket', long]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`socket path ${long} is`);
    noStackTrace(r.stderr);
  });
});

it('a socket outside the run directory (--socket) is owner-only too', async () => {
  const dir = tempDir(0o755);
  const socketPath = path.join(dir, 'xs.sock');
  const sim = await started({ umask: 0, args: ['--socket', socketPath] });
  expect(sim.socketPath).toBe(socketPath);
  expect(mode(socketPath)).toBe(0o600);
  const probe = net.connect(socketPath);
  await new Promise((resolve) => probe.once('connect', resolve));
  probe.destroy();
});
