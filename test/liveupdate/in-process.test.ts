import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { liveUpdateInProcess } from '../../src/liveupdate/in-process.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { RawClient } from '../helpers/raw-client.js';

const started: Daemon[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  for (const d of started.splice(0)) await d.close();
});

async function startDaemon(args: string[] = []): Promise<Daemon> {
  const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-lu-'));
  const daemon = new Daemon(parseOptions(args, { XENSTORED_RUNDIR: rundir }), () => {});
  await daemon.listen();
  started.push(daemon);
  return daemon;
}

async function connect(p: string): Promise<RawClient> {
  const c = await RawClient.connect(p);
  clients.push(c);
  return c;
}

describe('in-process live update', () => {
  it('keeps nodes, watches, open transactions and generation counts', async () => {
    let daemon = await startDaemon();
    const a = await connect(daemon.options.socketPath);
    const b = await connect(daemon.options.socketPath);
    await a.call(T.WRITE, '/a/b\0hello');
    await a.call(T.WRITE, '/a/c\0x');
    expect((await b.call(T.WATCH, '/a\0tok\0')).text).toBe('OK\0');
    expect(await b.event()).toBe('/a\0tok\0');
    const tx = Number((await a.call(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
    await a.call(T.WRITE, '/a/d\0in-tx', tx);
    const before = (await a.call(T.DIRECTORY_PART, '/a\x000\0')).text;

    const old = daemon;
    daemon = liveUpdateInProcess(old, () => {});
    started[0] = daemon;

    expect((await a.call(T.DIRECTORY_PART, '/a\x000\0')).text).toBe(before);
    expect((await a.call(T.READ, '/a/d\0', tx)).text).toBe('in-tx');
    expect((await a.call(T.TRANSACTION_END, 'T\0', tx)).text).toBe('OK\0');
    expect(await b.event()).toBe('/a/d\0tok\0');
    expect((await b.call(T.READ, '/a/d\0')).text).toBe('in-tx');
    expect((await a.call(T.DIRECTORY, '/a\0')).text).toBe('b\0c\0d\0');
    // A new client can still connect to the same listening socket.
    const c = await connect(daemon.options.socketPath);
    expect((await c.call(T.READ, '/a/b\0')).text).toBe('hello');
  });
});
