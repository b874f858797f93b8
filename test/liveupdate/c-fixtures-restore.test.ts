/**
 * State files written by the real C xenstored 4.17 during live update
 * (test/fixtures/c-xenstored, made by scripts/capture-c-fixtures.sh) restore
 * in xenstored-sim, which then answers every probe exactly as the original
 * daemon did after its own update — on fresh connections and on the
 * connections that were kept open across the update.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { MessageType } from '../../src/wire/vocabulary.js';
import { WireClient } from '../../src/testing/wire-client.js';

const FIXTURES = path.join(import.meta.dirname, '../fixtures/c-xenstored');

interface Step {
  conn: string;
  op: string;
  payloadHex?: string;
  bytesHex?: string;
  reqId?: number;
  txId?: number;
  replyType?: string;
  replyReqId?: number;
  replyHex?: string;
  events?: { payloadHex: string }[];
}

interface Fixture {
  stream: { connections: { connId: number; type: string; label: string }[] };
  probes: Step[];
}

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Connected socket pairs: the daemon gets one end, the test keeps the other. */
async function socketPairs(count: number): Promise<{ server: net.Socket; client: WireClient }[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-pairs-'));
  const accepted: net.Socket[] = [];
  const listener = net.createServer((s) => accepted.push(s));
  await new Promise<void>((r) => listener.listen(path.join(dir, 's'), r));
  const pairs: { server: net.Socket; client: WireClient }[] = [];
  for (let i = 0; i < count; i++) {
    const client = await WireClient.connect(path.join(dir, 's'));
    while (accepted.length <= i) await new Promise((r) => setTimeout(r, 5));
    pairs.push({ server: accepted[i]!, client });
  }
  listener.close();
  cleanup.push(() => pairs.forEach((p) => p.client.close()));
  return pairs;
}

/** DIRECTORY_PART generations are C's internal counter; compare only what follows them. */
function comparable(type: string | undefined, hex: string): string {
  if (type !== 'DIRECTORY_PART') return hex;
  const bytes = Buffer.from(hex, 'hex');
  return bytes.subarray(bytes.indexOf(0) + 1).toString('hex');
}

async function restoreFixture(name: string): Promise<{ daemon: Daemon; conns: Map<string, WireClient>; fixture: Fixture }> {
  const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
  const sockets = fixture.stream.connections.filter((c) => c.type === 'socket');
  const pairs = await socketPairs(sockets.length);
  const rundir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-cfix-'));
  const options = parseOptions(['--compat', '4.17'], { XENSTORED_RUNDIR: rundir });
  let socketIndex = 0;
  const { daemon, replay } = restoreDaemon(options, fs.readFileSync(path.join(FIXTURES, `${name}.bin`)), {
    listening: () => undefined,
    socket: () => pairs[socketIndex++]!.server,
    guest: () => undefined,
    domainListener: () => undefined,
    parked: () => undefined,
  }, () => {});
  await daemon.listen();
  cleanup.push(() => daemon.close());
  replay();
  const conns = new Map<string, WireClient>(sockets.map((c, i) => [c.label, pairs[i]!.client]));
  const probe = await WireClient.connect(options.socketPath);
  cleanup.push(() => probe.close());
  conns.set('probe', probe);
  // The kept xenstore-control connection gets the live-update OK first, as from C.
  const control = conns.get('xenstore-control');
  if (control) expect((await control.take(() => true)).payload.toString('latin1')).toBe('OK\0');
  return { daemon, conns, fixture };
}

async function runProbes(conns: Map<string, WireClient>, probes: Step[]): Promise<number> {
  let checked = 0;
  for (const step of probes) {
    const conn = conns.get(step.conn);
    if (!conn) throw new Error(`no connection labelled ${step.conn}`);
    if (step.op === 'WATCH_EVENTS') {
      for (const event of step.events ?? []) {
        const got = await conn.take((f) => f.type === MessageType.WATCH_EVENT);
        expect(got.payload.toString('hex'), `event on ${step.conn}`).toBe(event.payloadHex);
        checked++;
      }
      continue;
    }
    if (step.op === 'RAW_SEND') {
      conn.sendRaw(Buffer.from(step.bytesHex!, 'hex'));
      continue;
    }
    let reqId = step.replyReqId;
    if (step.op !== 'RAW_REPLY') {
      const type = MessageType[step.op as keyof typeof MessageType];
      conn.socket.write(Buffer.concat([header(type, step.reqId!, step.txId ?? 0, step.payloadHex!.length / 2), Buffer.from(step.payloadHex!, 'hex')]));
      reqId = step.reqId;
    }
    const reply = await conn.take((f) => f.reqId === reqId && f.type !== MessageType.WATCH_EVENT);
    const expectedType = MessageType[step.replyType as keyof typeof MessageType];
    expect([step.op, reply.type, comparable(step.replyType, reply.payload.toString('hex'))], `${step.conn} ${step.op} ${step.payloadHex ?? ''}`)
      .toEqual([step.op, expectedType, comparable(step.replyType, step.replyHex!)]);
    checked++;
  }
  return checked;
}

function header(type: number, reqId: number, txId: number, len: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(reqId >>> 0, 4);
  h.writeUInt32LE(txId >>> 0, 8);
  h.writeUInt32LE(len, 12);
  return h;
}

describe('C xenstored 4.17 live-update streams', () => {
  for (const name of ['basic', 'perms', 'watches', 'pending', 'domains', 'large']) {
    it(`${name}: restores and answers like C did after its update`, async () => {
      const { conns, fixture } = await restoreFixture(name);
      const checked = await runProbes(conns, fixture.probes);
      expect(checked).toBeGreaterThan(0);
    });
  }
});
