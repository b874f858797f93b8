/**
 * The kit's WireClient: half frames reach the daemon as half frames, replies
 * and events come back as sent, a stream it cannot frame or a hang-up fails
 * the wait naming what it waited for.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, type Frame } from '../../src/protocol/frame.js';
import { makeRundir } from '../../src/testing/sim-handle.js';
import { startSimWithDaemon, type InProcessSim } from '../../src/testing/start-sim.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function sim(): Promise<InProcessSim> {
  const s = await startSimWithDaemon();
  cleanups.push(() => s.handle.stop());
  return s;
}

async function connect(socketPath: string, options?: Parameters<typeof WireClient.connect>[1]): Promise<WireClient> {
  const c = await WireClient.connect(socketPath, options);
  cleanups.push(() => c.close());
  return c;
}

/** A server that writes `bytes` to every client as soon as it connects, then (with `hangUp`) closes. */
async function server(bytes: Buffer, hangUp = false): Promise<string> {
  const dir = makeRundir();
  const socketPath = path.join(dir, 's');
  const srv = net.createServer((sock) => (hangUp ? sock.end(bytes) : sock.write(bytes)));
  await new Promise<void>((resolve) => srv.listen(socketPath, resolve));
  cleanups.push(async () => {
    await new Promise((resolve) => srv.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return socketPath;
}

const bytesOf = (type: number, reqId: number, payload: string): Buffer => encodeFrame({ type, reqId, txId: 0, payload: Buffer.from(payload, 'latin1') });

describe('WireClient', () => {
  it('a request sent in two parts is held by the daemon until complete, then answered once', async () => {
    const s = await sim();
    const transcript: Buffer[] = [];
    const c = await connect(s.handle.path, { transcript });
    const { reqId, bytes } = c.frame(T.WRITE, '/w/half\0value');
    c.sendRaw(bytes.subarray(0, 7));
    const held = () => [...s.daemon().connections.values()].reduce((n, conn) => n + conn.reader.unconsumed().length, 0);
    await waitFor('the daemon to hold the first 7 bytes', () => held() === 7);
    expect(c.received).toEqual([]);
    c.sendRaw(bytes.subarray(7));
    expect((await c.reply(reqId)).text).toBe('OK\0');
    expect(c.bytesSent).toBe(bytes.length);
    expect((await c.call(T.READ, '/w/half\0')).text).toBe('value');
    expect(Buffer.concat(transcript)).toEqual(Buffer.concat([bytesOf(T.WRITE, 1, 'OK\0'), bytesOf(T.READ, 2, 'value')]));
  });

  it('keeps watch events apart from replies, in arrival order', async () => {
    const s = await sim();
    const c = await connect(s.handle.path);
    expect((await c.call(T.WATCH, '/w\0tok\0')).text).toBe('OK\0');
    expect((await c.call(T.WRITE, '/w/a\0x')).text).toBe('OK\0');
    expect(await c.event()).toBe('/w\0tok\0');
    expect(await c.event()).toBe('/w/a\0tok\0');
    expect(c.received).toEqual([]);
  });

  it('hands frames to onFrame instead of queueing them', async () => {
    const seen: Frame[] = [];
    const socketPath = await server(Buffer.concat([bytesOf(T.READ, 1, 'a'), bytesOf(T.WATCH_EVENT, 0, '/p\0t\0')]));
    const c = await connect(socketPath, { onFrame: (f) => seen.push(f) });
    await waitFor('two frames', () => seen.length === 2);
    expect(seen.map((f) => [f.type, f.reqId, f.payload.toString('latin1')])).toEqual([[T.READ, 1, 'a'], [T.WATCH_EVENT, 0, '/p\0t\0']]);
    expect(c.received).toEqual([]);
  });

  it('a reply stream it cannot frame closes the connection and fails the wait, saying why', async () => {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(T.READ, 0);
    header.writeUInt32LE(1, 4);
    header.writeUInt32LE(4097, 12);
    const c = await connect(await server(header), { name: 'victim' });
    await expect(c.reply(1)).rejects.toThrow(/^victim: unframeable reply stream \(payload length 4097 exceeds 4096\) while waiting for the reply to request 1$/);
    expect(c.closed).toBe(true);
  });

  it('a hang-up fails the wait naming what it waited for', async () => {
    const c = await connect(await server(Buffer.alloc(0), true), { name: 'left' });
    await expect(c.event()).rejects.toThrow('left: connection closed while waiting for a watch event');
  });
});
