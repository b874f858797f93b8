/**
 * The sandbox's HTTP side, without a browser: bad requests get answers,
 * never a dead daemon; files only from the run directory; DNS rebinding
 * refused on the real server.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XsClient } from '../../src/client/index.js';
import { REPO_ROOT, startSim, type SimDaemon } from '../helpers/sim-daemon.js';

let sim: SimDaemon;
let base: URL;
let token: string;
let traceDir: string;

beforeAll(async () => {
  traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-ui-trace-'));
  sim = await startSim({ args: ['--ui', '127.0.0.1:0', '-T', path.join(traceDir, 'trace')] });
  base = new URL(/^UI=(.+)$/m.exec(sim.stdout())![1]!);
  token = base.searchParams.get('token')!;
});

afterAll(async () => {
  await sim?.stop();
  fs.rmSync(traceDir, { recursive: true, force: true });
});

async function call(p: string, init: RequestInit = {}, params: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const url = new URL(p, base);
  url.search = new URLSearchParams({ ...params, token }).toString();
  const r = await fetch(url, init);
  return { status: r.status, body: await r.json() };
}

const postJson = (p: string, body: string) => call(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('the sandbox server', () => {
  it('answers bad requests with errors and keeps serving', async () => {
    expect((await postJson('/api/node', 'not json')).status).toBe(400);
    expect((await postJson('/api/domain', '{"op":"crash","domid":-1}')).status).toBe(400);
    expect((await postJson('/api/control', '{"args":[1]}')).status).toBe(400);
    expect((await call('/api/nothing')).status).toBe(404);
    expect((await call('/api/state', { method: 'DELETE' })).status).toBe(404);
    expect(await postJson('/api/node', '{"as":0,"op":"read","path":"/no/such"}')).toEqual({ status: 200, body: { ok: false, error: 'ENOENT', message: 'ENOENT: READ "/no/such"' } });
    expect(await postJson('/api/node', '{"as":0,"op":"tx-commit"}')).toMatchObject({ body: { ok: false, error: 'ENOENT' } });
    expect(await postJson('/api/node', '{"as":9,"op":"read","path":"/"}')).toMatchObject({ body: { ok: false, error: 'XS_CONNECTION_CLOSED' } });
    expect((await call('/api/state')).body).toMatchObject({ pid: sim.pid });
  });

  it('lists a stream that is not one, saying what is wrong', async () => {
    const { status, body } = await call('/api/stream', { method: 'POST', body: Buffer.from('definitely not a stream') });
    expect(status).toBe(200);
    expect(body).toMatchObject({ records: [], problem: expect.stringMatching(/./) });
  });

  it('reads files from the run directory only', async () => {
    const dump = await fetch(new URL(`/api/dump?token=${token}`, base));
    fs.writeFileSync(path.join(sim.rundir, 'saved.dump'), Buffer.from(await dump.arrayBuffer()));
    expect((await call('/api/files')).body).toContain('saved.dump');
    const saved = (await call('/api/stream', {}, { file: 'saved.dump' })).body;
    expect(saved).toMatchObject({ records: expect.arrayContaining([expect.objectContaining({ type: 'NODE_DATA' })]) });
    expect(saved).not.toHaveProperty('problem');
    for (const file of ['../../etc/passwd', '/etc/passwd', path.join(REPO_ROOT, 'package.json'), '']) {
      expect((await call('/api/stream', {}, { file })).status).toBe(400);
    }
    expect((await call('/api/stream', {}, { file: 'missing' })).status).toBe(404);
    fs.symlinkSync('/etc/passwd', path.join(sim.rundir, 'link'));
    expect((await call('/api/stream', {}, { file: 'link' })).body).toEqual({ error: 'ERROR', message: 'link is a symbolic link' });
  });

  it('pushes the very lines the trace file gets, watch events included', async () => {
    const events = await fetch(new URL(`/api/events?token=${token}`, base));
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    const client = await XsClient.connect(sim.socketPath);
    await client.watch('/pushed', 'tok');
    await client.write('/pushed/x', 'y');
    let pushed: string[] = [];
    let text = '';
    while (!pushed.some((l) => l.includes('WATCH_EVENT (/pushed/x tok )'))) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      text += value;
      pushed = [...text.matchAll(/^event: lines\ndata: (.*)$/gm)].flatMap((m) => (JSON.parse(m[1]!) as { lines: string[] }).lines);
    }
    await reader.cancel();
    await client.close();
    const traced = fs.readFileSync(path.join(traceDir, 'trace'), 'latin1').split('\n');
    const ours = pushed.filter((l) => l.includes('/pushed'));
    expect(ours.length).toBeGreaterThanOrEqual(3);
    for (const line of ours) expect(traced).toContain(line);
  });

  it('refuses a Host header naming another server (DNS rebinding)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: base.port, path: `/?token=${token}`, headers: { host: `rebound.example:${base.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    expect(status).toBe(403);
  });
});
