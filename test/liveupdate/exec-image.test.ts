import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adoptConnectedSocket, fdOf, resumeReading, stopReading } from '../../src/liveupdate/adopt-fds.js';
import {
  INHERITED_FDS_ENV,
  NO_NATIVE_ENV,
  loadExecAddon,
  reexecAvailable,
  reexecSelf,
  reexecUnavailableReason,
  spawnSuccessor,
  takeInheritedFds,
} from '../../src/liveupdate/exec-image.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const addonFile = path.join(root, 'build', 'Release', 'xs_execve.node');
const fixture = path.join(root, 'test', 'liveupdate', 'fixtures', 'reexec-daemon.mjs');
const linux = process.platform === 'linux';
const haveAddon = linux && existsSync(addonFile);
if (linux && !haveAddon) console.warn(`exec-image tests: ${addonFile} missing (run npm install); native tests skipped`);

let tmp: string;
let modules: string;
const pids = new Set<number>();

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'xs-exec-'));
  // The fixture runs under plain node: compile the two modules it needs.
  modules = path.join(tmp, 'modules');
  const tsc = spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--ignoreConfig',
      ...['--outDir', modules, '--rootDir', path.join(root, 'src')],
      ...['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022'],
      ...['--strict', '--skipLibCheck', '--types', 'node'],
      path.join(root, 'src', 'liveupdate', 'exec-image.ts'),
      path.join(root, 'src', 'liveupdate', 'adopt-fds.ts'),
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  writeFileSync(path.join(modules, 'package.json'), '{"type":"module"}\n');
});

afterEach(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Resolves with the first item `take` accepts, from what came and what comes. */
class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<(item: T) => boolean> = [];
  push(item: T): void {
    this.items.push(item);
    for (let i = 0; i < this.waiters.length; i++) {
      if (this.waiters[i]!(item)) this.waiters.splice(i--, 1);
    }
  }
  next(accept: (item: T) => boolean, what: string, ms = 10_000): Promise<T> {
    const found = this.items.find(accept);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.items)}`)), ms);
      this.waiters.push((item) => {
        if (!accept(item)) return false;
        clearTimeout(timer);
        resolve(item);
        return true;
      });
    });
  }
}

type Flags = { nonblock: boolean; cloexec: boolean };
type DaemonEvent = {
  event: string;
  pid: number;
  mode?: string;
  childPid?: number;
  keepFds?: number[];
  fds?: number[];
  flags?: Flags[];
  stdio?: Flags[];
  execArgv?: string[];
  envLeft?: string | null;
};

/** The fixture daemon, as seen through its stdout. */
function startDaemon(sock: string, env: NodeJS.ProcessEnv): { child: ChildProcess; events: Inbox<DaemonEvent> } {
  const child = spawn(process.execPath, ['--max-old-space-size=123', fixture, 'old', sock], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, XS_TEST_MODULES: modules, XENSTORED_SIM_NATIVE_ADDON: addonFile, ...env },
  });
  pids.add(child.pid!);
  const events = new Inbox<DaemonEvent>();
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const ev = JSON.parse(line) as DaemonEvent;
    if (ev.event === 'spawned' && ev.childPid) pids.add(ev.childPid);
    events.push(ev);
  });
  return { child, events };
}

function connect(sock: string): Promise<{ socket: net.Socket; lines: Inbox<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(sock);
    const lines = new Inbox<string>();
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push(buf.slice(0, i));
    });
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, lines }));
  });
}

const write = (socket: net.Socket, data: string): Promise<void> =>
  new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));

/**
 * The whole story: a client talks to the old image and then sends two lines
 * the old image never reads; the hand-over is triggered; a second client
 * connects while it is under way (queued in the backlog); then both, and a
 * third client, talk to the new image.
 */
async function handOver(env: NodeJS.ProcessEnv) {
  const sock = path.join(tmp, `d${Math.random().toString(36).slice(2, 8)}.sock`);
  const { child, events } = startDaemon(sock, env);
  const listening = await events.next((e) => e.event === 'listening', 'listening');

  const a = await connect(sock);
  await write(a.socket, 'hello\n');
  expect(await a.lines.next((l) => l.startsWith('welcome'), 'welcome')).toBe(`welcome old ${child.pid}`);
  await events.next((e) => e.event === 'client', 'client');
  await write(a.socket, 'unread-1\nunread-2\n'); // sits in the kernel, unread

  child.kill('SIGUSR2');
  const handover = await events.next((e) => e.event === 'exec' || e.event === 'spawned', 'hand-over');
  const b = await connect(sock); // accepted by nobody yet: queued in the backlog
  await write(b.socket, 'early\n');

  const started = await events.next((e) => e.event === 'started', 'started');
  const adopted = await events.next((e) => e.event === 'adopted', 'adopted');
  const pid = started.pid;
  pids.add(pid);

  const unread = [await a.lines.next((l) => l.endsWith('unread-1'), 'unread-1'), await a.lines.next((l) => l.endsWith('unread-2'), 'unread-2')];
  const early = await b.lines.next((l) => l.endsWith('early'), 'early');
  await write(a.socket, 'after\n');
  const after = await a.lines.next((l) => l.endsWith('after'), 'after');
  const c = await connect(sock);
  await write(c.socket, 'fresh\n');
  const fresh = await c.lines.next((l) => l.endsWith('fresh'), 'fresh');

  for (const s of [a, b, c]) s.socket.destroy();
  return { child, listening, handover, started, adopted, pid, unread, early, after, fresh };
}

describe.runIf(linux)('live update hand-over, end to end', () => {
  it.runIf(haveAddon)('re-exec keeps the PID, the listener, the clients and their unread bytes', async () => {
    const r = await handOver({});
    expect(r.listening.mode).toBe('exec');
    expect(r.handover.event).toBe('exec');
    // same PID before and after, reported through the same stdout pipe
    expect(r.handover.pid).toBe(r.child.pid);
    expect(r.pid).toBe(r.child.pid);
    // same descriptor numbers, handed over without FD_CLOEXEC, still O_NONBLOCK
    expect(r.started.fds).toEqual(r.handover.keepFds);
    expect(r.started.flags).toEqual([
      { nonblock: true, cloexec: false },
      { nonblock: true, cloexec: false },
    ]);
    // adopting marks them close-on-exec again (through the addon)
    expect(r.adopted.flags?.every((f) => f.cloexec)).toBe(true);
    // node flags only survive because the old image passed execArgv again
    expect(r.started.execArgv).toEqual(['--max-old-space-size=123']);
    expect(r.started.envLeft).toBeNull();
    expect(r.unread).toEqual([`adopted ${r.pid} unread-1`, `adopted ${r.pid} unread-2`]);
    expect(r.early).toBe(`accepted ${r.pid} early`);
    expect(r.after).toBe(`adopted ${r.pid} after`);
    expect(r.fresh).toBe(`accepted ${r.pid} fresh`);
  });

  it(`spawn fallback (${NO_NATIVE_ENV}=1): new PID, descriptors at 3.., same data`, async () => {
    const r = await handOver({ [NO_NATIVE_ENV]: '1' });
    expect(r.listening.mode).toBe('spawn');
    expect(r.handover.event).toBe('spawned');
    expect(r.pid).toBe(r.handover.childPid);
    expect(r.pid).not.toBe(r.child.pid);
    expect(r.started.fds).toEqual([3, 4]);
    expect(r.started.flags?.every((f) => f.nonblock)).toBe(true);
    expect(r.started.execArgv).toEqual(['--max-old-space-size=123']);
    expect(r.unread).toEqual([`adopted ${r.pid} unread-1`, `adopted ${r.pid} unread-2`]);
    expect(r.early).toBe(`accepted ${r.pid} early`);
    expect(r.after).toBe(`adopted ${r.pid} after`);
    // the old process is gone and its exit did not unlink or close the socket
    expect(r.child.exitCode ?? (await new Promise((res) => r.child.once('exit', res)))).toBe(0);
    expect(r.fresh).toBe(`accepted ${r.pid} fresh`);
  });
});

describe.runIf(haveAddon)('native addon, in this process', () => {
  const addon = () => loadExecAddon()!;

  async function listeningServer(): Promise<net.Server> {
    const server = net.createServer((s) => s.end('still here\n'));
    const sock = path.join(tmp, `s${Math.random().toString(36).slice(2, 8)}.sock`);
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    return server;
  }

  it('is available and sees the FD_CLOEXEC Node puts on everything, stdio included', async () => {
    expect(reexecAvailable()).toBe(true);
    expect(reexecUnavailableReason()).toBeUndefined();
    const server = await listeningServer();
    expect(addon().getCloexec(fdOf(server))).toBe(true);
    expect([0, 1, 2].map((fd) => addon().getCloexec(fd))).toEqual([true, true, true]);
    server.close();
  });

  it('clearCloexec returns the old flags and setCloexec puts them back', async () => {
    const server = await listeningServer();
    const fd = fdOf(server);
    const saved = addon().clearCloexec([fd]);
    expect(saved).toEqual([1]); // FD_CLOEXEC
    expect(addon().getCloexec(fd)).toBe(false);
    addon().setCloexec([fd], saved);
    expect(addon().getCloexec(fd)).toBe(true);
    server.close();
  });

  it('clearCloexec is all or nothing', async () => {
    const server = await listeningServer();
    const fd = fdOf(server);
    expect(() => addon().clearCloexec([fd, 1_000_000])).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fcntl' }));
    expect(addon().getCloexec(fd)).toBe(true);
    expect(() => addon().getCloexec(-1)).toThrow(TypeError);
    server.close();
  });

  it('a failed exec throws ENOENT, restores FD_CLOEXEC and the process keeps serving', async () => {
    const server = await listeningServer();
    const fd = fdOf(server);
    let error: NodeJS.ErrnoException | undefined;
    try {
      reexecSelf({ execPath: '/nonexistent/xs-no-such-binary', argv: ['--version'], keepFds: [fd] });
    } catch (err) {
      error = err as NodeJS.ErrnoException;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'execve', path: '/nonexistent/xs-no-such-binary' });
    expect(error!.message).toBe("ENOENT: no such file or directory, execve '/nonexistent/xs-no-such-binary'");
    expect(addon().getCloexec(fd)).toBe(true);
    expect([0, 1, 2].map((n) => addon().getCloexec(n))).toEqual([true, true, true]);
    const client = await connect(server.address() as string);
    expect(await client.lines.next(() => true, 'reply')).toBe('still here');
    client.socket.destroy();
    server.close();
  });

  it('a non-executable file gives EACCES', () => {
    const file = path.join(tmp, 'not-executable');
    writeFileSync(file, '#!/bin/sh\n');
    chmodSync(file, 0o644);
    expect(() => reexecSelf({ execPath: file, argv: [], keepFds: [] })).toThrow(
      expect.objectContaining({ code: 'EACCES', syscall: 'execve' }),
    );
  });
});

describe('fallback switch and descriptor contract', () => {
  it(`${NO_NATIVE_ENV}=1 disables re-exec`, () => {
    const saved = process.env[NO_NATIVE_ENV];
    process.env[NO_NATIVE_ENV] = '1';
    try {
      expect(reexecAvailable()).toBe(false);
      expect(reexecUnavailableReason()).toContain(NO_NATIVE_ENV);
      expect(() => reexecSelf({ execPath: process.execPath, argv: [], keepFds: [] })).toThrow(
        expect.objectContaining({ code: 'ERR_XS_REEXEC_UNAVAILABLE' }),
      );
    } finally {
      if (saved === undefined) delete process.env[NO_NATIVE_ENV];
      else process.env[NO_NATIVE_ENV] = saved;
    }
  });

  it('spawnSuccessor throws at once when the program is missing', async () => {
    expect(() => spawnSuccessor({ execPath: '/nonexistent/xs-no-such-binary', argv: [], keepFds: [] })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'spawn' }),
    );
    await new Promise((resolve) => setTimeout(resolve, 20)); // the deferred 'error' event is swallowed
  });

  it.runIf(linux)('spawnSuccessor hands keepFds[i] over as fd 3+i and says so in the environment', async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(path.join(tmp, 'c.sock'), resolve));
    const client = await connect(path.join(tmp, 'c.sock'));
    const peer = await accepted;
    // The child answers through the connection it was handed, as its fd 3.
    const script =
      `const fs = require('fs');` +
      `fs.writeSync(3, JSON.stringify({ fds: process.env.${INHERITED_FDS_ENV}, socket: fs.fstatSync(3).isSocket() }) + '\\n')`;
    const child = spawnSuccessor({ execPath: process.execPath, argv: ['-e', script], keepFds: [fdOf(peer)], keepStdio: false });
    expect(child.pid).toBeTypeOf('number');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    expect(JSON.parse(await client.lines.next(() => true, 'child report'))).toEqual({ fds: '3', socket: true });
    expect(await exited).toBe(0);
    client.socket.destroy();
    peer.destroy();
    server.close();
  });

  it('takeInheritedFds reads the list once and removes it', () => {
    const env: NodeJS.ProcessEnv = { [INHERITED_FDS_ENV]: '17,21,3' };
    expect(takeInheritedFds(env)).toEqual([17, 21, 3]);
    expect(env[INHERITED_FDS_ENV]).toBeUndefined();
    expect(takeInheritedFds(env)).toEqual([]);
    expect(() => takeInheritedFds({ [INHERITED_FDS_ENV]: '3,x' })).toThrow(/bad descriptor list/);
  });

  it('rejects bad arguments before touching anything', () => {
    expect(() => spawnSuccessor({ execPath: process.execPath, argv: [], keepFds: [5, 5] })).toThrow(TypeError);
    expect(() => spawnSuccessor({ execPath: process.execPath, argv: ['a\0b'], keepFds: [] })).toThrow(TypeError);
    expect(() => reexecSelf({ execPath: '', argv: [], keepFds: [] })).toThrow();
  });

  it.runIf(linux)('stopReading leaves bytes in the kernel; resumeReading gets them', async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const sock = path.join(tmp, 'r.sock');
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    const client = await connect(sock);
    const peer = await accepted;
    const got: string[] = [];
    peer.setEncoding('utf8');
    peer.on('data', (d: string) => got.push(d));
    stopReading(peer);
    await write(client.socket, 'kept\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got).toEqual([]);
    resumeReading(peer);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got.join('')).toBe('kept\n');
    client.socket.destroy();
    peer.destroy();
    server.close();
  });

  it('fdOf refuses sockets without a descriptor and adoptConnectedSocket refuses non-sockets', () => {
    expect(() => fdOf(new net.Socket())).toThrow(/no file descriptor/);
    expect(() => adoptConnectedSocket(-1)).toThrow(TypeError);
    const fd = openSync(fixture, 'r');
    try {
      expect(() => adoptConnectedSocket(fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FD_TYPE' }));
    } finally {
      closeSync(fd);
    }
  });
});
