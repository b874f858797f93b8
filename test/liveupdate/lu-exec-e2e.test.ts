/**
 * Live update end to end, with real clients, across a real re-exec of the
 * daemon process: `node dist/cli/xenstored-sim.js` is started as a child,
 * Xen's own `xenstore-control live-update <dist/cli/xenstored-sim.js>` (run
 * through the xenstored-ref kit's wrapper) makes it exec itself in place,
 * and every client stays connected:
 *
 *  - `xenstore-watch` (a child process) prints events before and after;
 *  - a pyxs client (/usr/bin/python3) holds a transaction open across the
 *    update and commits it afterwards;
 *  - raw wire clients leave half-sent requests (a partial header, a partial
 *    payload) that they complete after the update, a guest domain's client
 *    keeps its domain socket, and one client keeps writing during the update;
 *  - the PID stays the same (pid file, /proc/<pid>/stat start time), the new
 *    image runs with -U, nothing is lost.
 *
 * And the failure paths, with C xenstored's texts (checked against C 4.17
 * through the same xenstore-control): a missing or non-executable binary, `-a`
 * (abort), and a new image that refuses the state (`--check-stream` exits 1):
 * "Error activating new binary.", the old image keeps serving.
 *
 * Required: the kit's xenstore-control.sh (with $XS_REF_HOME's xenstore-control),
 * xenstore-utils on PATH, /usr/bin/python3 with pyxs, and the execve addon
 * build/Release/xs_execve.node (without it the update spawns a new process and
 * the PID changes). When one is missing these tests FAIL if CI is set, and are
 * skipped with a loud warning otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { reexecAvailable, reexecUnavailableReason } from '../../src/liveupdate/exec-image.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { SIM_CLI, startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { CI, XS_REF_HOME, PYTHON, KIT_CANDIDATES, findKit, onPath } from '../helpers/requirements.js';
import { sleep, waitFor } from '../helpers/wait.js';

// --- requirements: fail under CI, skip loudly otherwise -------------------------------

const KIT = findKit('xenstore-control.sh');
const CONTROL = KIT ? path.join(KIT, 'xenstore-control.sh') : undefined;
const SETUP_HINT = `run the xenstored-ref kit's setup.sh as root (.ci/run does it), and npm install for the execve addon`;


function missingRequirements(): string[] {
  const missing: string[] = [];
  if (!CONTROL) missing.push(`the kit's xenstore-control.sh (looked in ${KIT_CANDIDATES.join(', ')}; set XS_REF_KIT)`);
  const bin = path.join(XS_REF_HOME, 'usr', 'lib', 'xen-4.17', 'bin', 'xenstore-control');
  if (!fs.existsSync(bin)) missing.push(`${bin} (XS_REF_HOME=${XS_REF_HOME})`);
  const utils = ['xenstore-watch', 'xenstore-read', 'xenstore-write'].filter((c) => !onPath(c));
  if (utils.length) missing.push(`xenstore-utils: not on PATH: ${utils.join(' ')}`);
  const py = fs.existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import pyxs'], { encoding: 'utf8', timeout: 10_000 }) : undefined;
  if (py?.status !== 0) missing.push(`pyxs for ${PYTHON}${py ? `: ${py.stderr.trim()}` : ' (no such file)'}`);
  if (!reexecAvailable()) missing.push(`re-exec in place: ${reexecUnavailableReason() ?? 'unavailable'}`);
  return missing;
}

function describeWithClients(name: string, body: () => void): void {
  const missing = missingRequirements();
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const why = missing.join('; ');
  if (CI) {
    describe(name, () => {
      it('has its required clients', () => {
        throw new Error(`required client missing (CI is set, so this fails instead of skipping): ${why}. Fix: ${SETUP_HINT}`);
      });
    });
    return;
  }
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! SKIPPING "${name}": ${why}\n!! Fix: ${SETUP_HINT}\n!! (with CI set these tests fail instead)\n${bar}\n`);
  describe.skip(name, body);
}

// --- helpers ----------------------------------------------------------------------------

/** Writes made while the update runs: enough to span it on a fast machine, few enough to check one by one. */
const MAX_WRITES_DURING_UPDATE = 200;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(socket: string, cmd: string, args: string[], timeoutMs = 60_000): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const env = { ...process.env, XENSTORED_PATH: socket, XS_REF_HOME };
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** `xenstore-control live-update BINARY` through the kit's wrapper. */
const liveUpdate = (sim: SimDaemon, binary: string) => run(sim.socketPath, CONTROL!, ['live-update', binary]);

/** A long-running child whose stdout lines are collected as they come. */
class LineChild {
  readonly lines: string[] = [];
  private buf = '';
  stderr = '';
  exit: number | string | undefined;

  constructor(readonly what: string, readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.buf += s;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    child.once('exit', (code, signal) => (this.exit = code ?? signal ?? 'unknown'));
    children.add(this);
  }

  async waitLines(n: number, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (this.exit !== undefined) throw new Error(`${this.what} exited (${this.exit}) after ${JSON.stringify(this.lines)}; stderr ${JSON.stringify(this.stderr)}`);
      if (Date.now() > deadline) throw new Error(`${this.what}: wanted ${n} lines within ${timeoutMs} ms, got ${JSON.stringify(this.lines)}; stderr ${JSON.stringify(this.stderr)}`);
      await sleep(10);
    }
    return this.lines.slice(0, n);
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  kill(): void {
    if (this.exit === undefined) this.child.kill('SIGKILL');
  }
}

/** The kernel's start time of a process (field 22 of /proc/<pid>/stat), in clock ticks. */
function startTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function cmdline(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
}

/**
 * pyxs, driven line by line: opens a transaction and writes in it, says
 * READY <txid>, waits for "go", then writes and reads in the same transaction
 * and commits.
 */
const PYXS_SCRIPT = String.raw`
import sys, pyxs
c = pyxs.Client(unix_socket_path=sys.argv[1])
c.connect()
tx = c.transaction()
c.write(b'/lu/py/a', b'in-tx-1')
print('READY', tx, flush=True)
assert sys.stdin.readline().strip() == 'go'
c.write(b'/lu/py/b', b'in-tx-2')
seen = c.read(b'/lu/py/a').decode()
ok = c.commit()
print('COMMIT', ok, seen, flush=True)
print('AFTER', c.read(b'/lu/py/a').decode(), c.read(b'/lu/py/b').decode(), flush=True)
c.close()
`;

const daemons: SimDaemon[] = [];
const clients: WireClient[] = [];
const children = new Set<LineChild>();
const rundirs: string[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const c of children) c.kill();
  children.clear();
  for (const d of daemons.splice(0)) await d.stop();
  for (const dir of rundirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A daemon in its own run directory, writing its pid file there. */
async function start(): Promise<{ sim: SimDaemon; pidFile: string; exited: () => number | string | undefined }> {
  const rundir = fs.mkdtempSync('/tmp/xs-lue-');
  rundirs.push(rundir);
  const pidFile = path.join(rundir, 'xenstored.pid');
  const sim = await startSim({ rundir, args: ['-F', pidFile] });
  daemons.push(sim);
  let how: number | string | undefined;
  void sim.exited.then((h) => (how = h));
  return { sim, pidFile, exited: () => how };
}

async function connect(p: string): Promise<WireClient> {
  const c = await WireClient.connect(p);
  clients.push(c);
  return c;
}

const text = (s: string) => `${s}\0`;

// --- the tests ------------------------------------------------------------------------

describeWithClients('live update by re-exec, with real clients', () => {
  it('same process re-exec’d, sockets kept, nothing lost', async () => {
    const { sim: d, pidFile: pidPath, exited } = await start();
    const pid = d.pid;
    expect(fs.readFileSync(pidPath, 'utf8').trim()).toBe(String(pid));
    const started = startTime(pid);
    expect(cmdline(pid)).not.toContain('-U');

    // A dom0 raw client with some state, and a bulk of nodes.
    const a = await connect(d.socketPath);
    for (let i = 0; i < 200; i++) expect((await a.call(T.WRITE, `/lu/bulk/n${i}\0value-${i}`)).text).toBe(text('OK'));

    // xenstore-watch, printing events before the update.
    const watch = new LineChild('xenstore-watch /lu/w', spawn('xenstore-watch', ['/lu/w'], { env: { ...process.env, XENSTORED_PATH: d.socketPath }, stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(await watch.waitLines(1)).toEqual(['/lu/w']);
    await a.call(T.WRITE, '/lu/w/before\0b');
    expect(await watch.waitLines(2)).toEqual(['/lu/w', '/lu/w/before']);

    // A raw watcher too, with its own token.
    const w = await connect(d.socketPath);
    expect((await w.call(T.WATCH, '/lu/w\0raw\0')).text).toBe(text('OK'));
    expect(await w.event()).toBe('/lu/w\0raw\0');

    // pyxs with an open transaction (in a subtree nobody else touches: no conflict).
    expect((await a.call(T.MKDIR, '/lu/py\0')).text).toBe(text('OK'));
    const py = new LineChild('pyxs', spawn(PYTHON, ['-u', '-c', PYXS_SCRIPT, d.socketPath], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const [ready] = await py.waitLines(1);
    expect(ready).toMatch(/^READY \d+$/);
    // Not visible outside the transaction.
    expect((await a.call(T.READ, '/lu/py/a\0')).text).toBe(text('ENOENT'));

    // A guest domain and its client on <rundir>/domain/3.
    expect((await a.call(T.INTRODUCE, '3\x004099\x0019\0')).text).toBe(text('OK'));
    expect((await a.call(T.MKDIR, '/local/domain/3\0')).text).toBe(text('OK'));
    expect((await a.call(T.SET_PERMS, '/local/domain/3\0n3\0')).text).toBe(text('OK'));
    const guest = await connect(d.domainSocket(3));
    expect((await guest.call(T.WRITE, 'name\0guest-3')).text).toBe(text('OK'));
    expect((await guest.call(T.WATCH, '/local/domain/3/ctl\0g\0')).text).toBe(text('OK'));
    expect(await guest.event()).toBe('/local/domain/3/ctl\0g\0');

    // Half-sent requests: a partial header, and a whole header with part of the payload.
    const h1 = await connect(d.socketPath);
    const h2 = await connect(d.socketPath);
    const req1 = encodeFrame({ type: T.WRITE, reqId: 77, txId: 0, payload: Buffer.from('/lu/w/half1\0completed-1', 'latin1') });
    const req2 = encodeFrame({ type: T.WRITE, reqId: 78, txId: 0, payload: Buffer.from('/lu/w/half2\0completed-2', 'latin1') });
    h1.sendRaw(req1.subarray(0, 5));
    h2.sendRaw(req2.subarray(0, 16 + 7));
    await sleep(200); // let the old image read them: they travel in the state stream

    // Live update, while one more client keeps writing (requests are answered by whichever image is running).
    const busy = await connect(d.socketPath);
    expect((await busy.call(T.WATCH, '/lu/seq\0s\0')).text).toBe(text('OK'));
    expect(await busy.event()).toBe('/lu/seq\0s\0');
    const control = liveUpdate(d, SIM_CLI);
    let controlDone = false;
    void control.then(() => (controlDone = true));
    let writes = 0;
    // Bounded, so that what is checked below does not grow with the machine's load.
    while (!controlDone && writes < MAX_WRITES_DURING_UPDATE) {
      // A request that reaches the old image during its dry run is answered by the new one: allow for a slow machine.
      const reqId = busy.send(T.WRITE, `/lu/seq/n${writes}\0${writes}`);
      const reply = await busy.take((f) => f.reqId === reqId && f.type !== T.WATCH_EVENT, 60_000);
      expect(reply.payload.toString('latin1')).toBe(text('OK'));
      writes++;
    }
    const lu = await control;
    expect({ code: lu.code, stdout: lu.stdout, stderr: lu.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });

    // The same process, re-exec'd with -U.
    expect(exited()).toBeUndefined();
    expect(fs.readFileSync(pidPath, 'utf8').trim()).toBe(String(pid));
    expect(startTime(pid)).toBe(started);
    expect(cmdline(pid)).toContain('-U');
    // The new image logged it before answering; the pipe may deliver it a little later than the socket.
    await waitFor('the new image\'s "restored" log line', () => d.stderr().includes('live update: restored'));
    expect(fs.existsSync(path.join(d.rundir, 'state_dump'))).toBe(false);

    // Half-sent requests complete.
    h1.sendRaw(req1.subarray(5));
    h2.sendRaw(req2.subarray(16 + 7));
    const r1 = await h1.take((f) => f.reqId === 77, 30_000);
    const r2 = await h2.take((f) => f.reqId === 78, 30_000);
    expect([r1.type, r1.payload.toString('latin1')]).toEqual([T.WRITE, text('OK')]);
    expect([r2.type, r2.payload.toString('latin1')]).toEqual([T.WRITE, text('OK')]);

    // pyxs commits the transaction it opened before the update.
    py.send('go');
    expect((await py.waitLines(3)).slice(1)).toEqual(['COMMIT True in-tx-1', 'AFTER in-tx-1 in-tx-2']);
    expect((await a.call(T.READ, '/lu/py/a\0')).text).toBe('in-tx-1');
    expect((await a.call(T.READ, '/lu/py/b\0')).text).toBe('in-tx-2');

    // Events after the update, to xenstore-watch and the raw watcher, in order.
    await a.call(T.WRITE, '/lu/w/after\0a');
    expect(await watch.waitLines(5)).toEqual(['/lu/w', '/lu/w/before', '/lu/w/half1', '/lu/w/half2', '/lu/w/after']);
    for (const p of ['/lu/w/half1', '/lu/w/half2', '/lu/w/after']) expect(await w.event()).toBe(`${p}\0raw\0`);

    // The guest keeps its connection, its watch and its node.
    expect((await guest.call(T.READ, 'name\0')).text).toBe('guest-3');
    await a.call(T.WRITE, '/local/domain/3/ctl\0x');
    expect(await guest.event()).toBe('/local/domain/3/ctl\0g\0');

    // Nothing lost: every write before and during the update, and one event per write, in order.
    const dir = (await a.call(T.DIRECTORY, '/lu/bulk\0')).text.split('\0').filter(Boolean);
    expect(dir).toEqual(Array.from({ length: 200 }, (_, i) => `n${i}`));
    for (const i of [0, 99, 199]) expect((await a.call(T.READ, `/lu/bulk/n${i}\0`)).text).toBe(`value-${i}`);
    expect(writes).toBeGreaterThan(0);
    for (let i = 0; i < writes; i++) expect((await a.call(T.READ, `/lu/seq/n${i}\0`)).text).toBe(String(i));
    expect((await a.call(T.READ, `/lu/seq/n${writes}\0`)).text).toBe(text('ENOENT'));
    for (let i = 0; i < writes; i++) expect(await busy.event()).toBe(`/lu/seq/n${i}\0s\0`);
    expect(busy.received).toEqual([]);
    expect((await a.call(T.READ, '/lu/w/half1\0')).text).toBe('completed-1');
    expect((await a.call(T.READ, '/lu/w/half2\0')).text).toBe('completed-2');

    // Nobody was disconnected, and the listening socket still takes new clients.
    for (const c of [a, w, guest, h1, h2, busy]) expect(c.closed).toBe(false);
    expect(watch.exit).toBeUndefined();
    expect((await run(d.socketPath, 'xenstore-read', ['/lu/w/after'])).stdout).toBe('a\n');
    console.log(`lu-exec-e2e: live update took ${lu.ms} ms (xenstore-control), ${writes} writes answered during it`);
  }, 120_000);

  it('a missing or non-executable binary: C’s error text, the daemon keeps serving', async () => {
    const { sim } = await start();
    const pid = sim.pid;
    const c = await connect(sim.socketPath);
    expect((await c.call(T.WATCH, '/keep\0k\0')).text).toBe(text('OK'));
    expect(await c.event()).toBe('/keep\0k\0');

    const missing = await liveUpdate(sim, path.join(sim.rundir, 'no-such-binary'));
    expect({ code: missing.code, stdout: missing.stdout, stderr: missing.stderr }).toEqual({
      code: 3, stdout: '', stderr: 'Setting update binary failed:\nFile not accessible.\n',
    });
    const plain = path.join(sim.rundir, 'not-executable');
    fs.writeFileSync(plain, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const noexec = await liveUpdate(sim, plain);
    expect({ code: noexec.code, stdout: noexec.stdout, stderr: noexec.stderr }).toEqual({
      code: 3, stdout: '', stderr: 'Setting update binary failed:\nFile not executable.\n',
    });

    // Still the same image, serving, with no session left open.
    expect(cmdline(pid)).not.toContain('-U');
    expect((await c.call(T.CONTROL, 'live-update\0-a\0')).text).toBe(text('No live-update session active.'));
    expect((await run(sim.socketPath, 'xenstore-write', ['/keep/x', '1'])).code).toBe(0);
    expect(await c.event()).toBe('/keep/x\0k\0');
    expect((await c.call(T.READ, '/keep/x\0')).text).toBe('1');
    expect(c.closed).toBe(false);
  }, 60_000);

  it('-a aborts a session; xenstore-control then succeeds', async () => {
    const { sim } = await start();
    const owner = await connect(sim.socketPath);
    const other = await connect(sim.socketPath);
    expect((await owner.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe(text('OK'));
    // The session is taken: xenstore-control's -f fails and, as with C 4.17, leaves the session alone.
    const busy = await liveUpdate(sim, SIM_CLI);
    expect({ code: busy.code, stdout: busy.stdout, stderr: busy.stderr }).toEqual({
      code: 3, stdout: '', stderr: 'Setting update binary failed:\nlive-update session already active.\n',
    });
    expect(cmdline(sim.pid)).not.toContain('-U');
    // (Replies as C xenstored 4.17 gives them for the same sequence.)
    expect((await owner.call(T.CONTROL, `live-update\0-f\0${SIM_CLI}\0`)).text).toBe(text('live-update session already active.'));
    expect((await other.call(T.CONTROL, 'live-update\0-s\0')).text).toBe(text('Not in live-update session.'));
    expect((await other.call(T.CONTROL, 'live-update\0-a\0')).text).toBe(text('OK'));
    expect((await other.call(T.CONTROL, 'live-update\0-a\0')).text).toBe(text('No live-update session active.'));
    expect((await owner.call(T.CONTROL, 'live-update\0-s\0-t\x0010\0')).text).toBe(text('Not in live-update session.'));
    expect(cmdline(sim.pid)).not.toContain('-U');

    const lu = await liveUpdate(sim, SIM_CLI);
    expect({ code: lu.code, stdout: lu.stdout, stderr: lu.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(cmdline(sim.pid)).toContain('-U');
    expect((await owner.call(T.READ, '/tool/xenstored\0')).type).toBe(T.READ);
    expect((await other.call(T.CONTROL, 'live-update\0-a\0')).text).toBe(text('No live-update session active.'));
  }, 60_000);

  it('a new image that refuses the state: "Error activating new binary.", the old image keeps serving', async () => {
    const { sim } = await start();
    const pid = sim.pid;
    const started = startTime(pid);
    const argsFile = path.join(sim.rundir, 'bad-image-args');
    const bad = path.join(sim.rundir, 'bad-image.sh');
    fs.writeFileSync(bad, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\nfor a; do [ "$a" = --check-stream ] && exit 1; done\nexit 1\n`, { mode: 0o755 });

    const c = await connect(sim.socketPath);
    expect((await c.call(T.WRITE, '/stay/a\0before')).text).toBe(text('OK'));
    expect((await c.call(T.WATCH, '/stay\0s\0')).text).toBe(text('OK'));
    expect(await c.event()).toBe('/stay\0s\0');
    const tx = (await c.call(T.TRANSACTION_START, '\0')).text.replace('\0', '');
    expect((await c.call(T.WRITE, '/stay/tx\0in-tx', Number(tx))).text).toBe(text('OK'));

    const r = await liveUpdate(sim, bad);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 3, stdout: '', stderr: 'Starting live update failed:\nError activating new binary.\n',
    });
    // The new image was only asked to check the stream.
    const args = fs.readFileSync(argsFile, 'utf8').split('\n').filter(Boolean);
    expect(args).toContain('--check-stream');
    expect(args).not.toContain('-U');
    // It was to read a dump of the current state on its stdin; the real one was never written.
    expect(args[args.indexOf('--check-stream') + 1]).toBe('-');
    expect(fs.existsSync(path.join(sim.rundir, 'state_dump'))).toBe(false);
    expect(sim.stderr()).toContain('new image refused the state');

    // The old image, same process, still serving everything.
    expect(startTime(pid)).toBe(started);
    expect(cmdline(pid)).not.toContain('-U');
    expect((await c.call(T.CONTROL, 'live-update\0-a\0')).text).toBe(text('No live-update session active.'));
    expect((await c.call(T.TRANSACTION_END, 'T\0', Number(tx))).text).toBe(text('OK'));
    expect(await c.event()).toBe('/stay/tx\0s\0');
    expect((await run(sim.socketPath, 'xenstore-read', ['/stay/a', '/stay/tx'])).stdout).toBe('before\nin-tx\n');
    expect(c.closed).toBe(false);
    // And a real update still works afterwards.
    const lu = await liveUpdate(sim, SIM_CLI);
    expect(lu.code).toBe(0);
    expect(startTime(pid)).toBe(started);
    expect((await c.call(T.READ, '/stay/tx\0')).text).toBe('in-tx');
  }, 60_000);
});
