/**
 * XsClient against a real daemon (C xenstored 4.17 from the reference kit by
 * default) plus a scripted fake server for the cases a correct daemon never
 * produces (out-of-order replies, unknown req_ids, bad reply types).
 *
 * The daemon under test is pluggable: XS_CLIENT_DAEMON=c (default) or
 * XS_CLIENT_DAEMON=sim (test/helpers/sim-daemon.ts, --compat from
 * XS_CLIENT_COMPAT, default 4.17). Expectations that differ between C 4.17
 * and master depend on `compat`.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  XsClient,
  XsConnectionError,
  XsError,
  XsProtocolError,
  isXsError,
  type WatchEvent,
} from '../../src/client/index.js';
import { encodeFrame, type Frame } from '../../src/protocol/frame.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { MessageType, PAYLOAD_MAX } from '../../src/wire/vocabulary.js';
import { startCXenstored, type DaemonUnderTest } from '../helpers/c-xenstored.js';

type Compat = '4.17' | 'master';
interface TestDaemon extends DaemonUnderTest {
  compat: Compat;
}

async function startDaemonUnderTest(): Promise<TestDaemon> {
  const kind = process.env.XS_CLIENT_DAEMON ?? 'c';
  if (kind === 'c') return { ...(await startCXenstored()), compat: '4.17' };
  if (kind === 'sim') {
    const compat = (process.env.XS_CLIENT_COMPAT ?? '4.17') as Compat;
    const { startSim } = await import('../helpers/sim-daemon.js');
    const sim = await startSim({ args: ['--compat', compat] });
    return { socketPath: sim.socketPath, stop: () => sim.stop(), compat };
  }
  throw new Error(`XS_CLIENT_DAEMON=${kind}: expected "c" or "sim"`);
}

let daemon: TestDaemon;
const clients: XsClient[] = [];

async function connect(): Promise<XsClient> {
  const c = await XsClient.connect(daemon.socketPath);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  daemon = await startDaemonUnderTest();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await daemon?.stop();
});

/** Resolves with the XsError a promise rejects with (fails if it resolves). */
async function xsError(p: Promise<unknown>): Promise<XsError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XsError) return e;
    throw e;
  }
  throw new Error('expected an XsError, but the request succeeded');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return (await xsError(p)).code;
}

/** The next event from an iterator, failing after `ms`. */
async function nextEvent(it: AsyncIterator<WatchEvent>, ms = 2000): Promise<WatchEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no watch event within ${ms} ms`)), ms);
  });
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error('watch event iterator ended');
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/** Records every frame a client receives. */
function recordFrames(c: XsClient): Frame[] {
  const frames: Frame[] = [];
  c.on('frame', (f) => frames.push(f));
  return frames;
}

const text = (f: Frame) => f.payload.toString('latin1');

// ---------------------------------------------------------------------------

describe('node operations', () => {
  it('write, read, readString, mkdir, rm, directory', async () => {
    const c = await connect();
    await c.write('/xsc/node/a', 'hello');
    expect(await c.readString('/xsc/node/a')).toBe('hello');
    expect(await c.read('/xsc/node/a')).toEqual(Buffer.from('hello'));
    // Missing parents are created with empty values.
    expect((await c.read('/xsc/node')).length).toBe(0);

    await c.mkdir('/xsc/node/b');
    await c.mkdir('/xsc/node/b'); // existing: still OK
    expect(await c.readString('/xsc/node/b')).toBe('');
    await c.write('/xsc/node/0-last', '');
    // Creation order, not sorted.
    expect(await c.directory('/xsc/node')).toEqual(['a', 'b', '0-last']);
    expect(await c.directory('/xsc/node/a')).toEqual([]);

    await c.rm('/xsc/node/b');
    expect(await c.directory('/xsc/node')).toEqual(['a', '0-last']);
    await c.rm('/xsc/node/missing'); // parent exists: OK
    expect(await codeOf(c.rm('/xsc/node/missing/deeper'))).toBe('ENOENT');
    await c.rm('/xsc/node');
    expect(await codeOf(c.read('/xsc/node/a'))).toBe('ENOENT');
  });

  it('binary values round-trip, including NULs', async () => {
    const c = await connect();
    const value = Buffer.from([0, 1, 2, 0, 255, 0x80, 0]);
    await c.write('/xsc/bin', value);
    expect(await c.read('/xsc/bin')).toEqual(value);
    const big = Buffer.alloc(4000, 0xab);
    await c.write('/xsc/bin', big);
    expect(await c.read('/xsc/bin')).toEqual(big);
    await c.write('/xsc/bin', 'grüße');
    expect(await c.readString('/xsc/bin')).toBe('grüße');
  });

  it('relative paths are under /local/domain/0 for a socket client', async () => {
    const c = await connect();
    await c.write('xsc-rel/x', 'r');
    expect(await c.readString('/local/domain/0/xsc-rel/x')).toBe('r');
    expect(await c.getDomainPath(0)).toBe('/local/domain/0');
  });

  it('getPerms and setPerms use the wire form', async () => {
    const c = await connect();
    await c.write('/xsc/perms/p', 'x');
    expect(await c.getPerms('/xsc/perms/p')).toEqual(['n0']);
    await c.setPerms('/xsc/perms/p', ['n0', 'r5', 'b7']);
    expect(await c.getPerms('/xsc/perms/p')).toEqual(['n0', 'r5', 'b7']);
    await c.setPerms('/xsc/perms/p', ['r3']);
    expect(await c.getPerms('/xsc/perms/p')).toEqual(['r3']);
    // Children created later inherit the parent's list.
    await c.write('/xsc/perms/p/child', '');
    expect(await c.getPerms('/xsc/perms/p/child')).toEqual(['r3']);
    expect(await codeOf(c.setPerms('/xsc/perms/p', ['x1']))).toBe('EINVAL');
    expect(await codeOf(c.getPerms('/xsc/perms/none/deeper'))).toBe('ENOENT');
  });
});

describe('errors', () => {
  it('ERROR replies reject with XsError carrying the errno name', async () => {
    const c = await connect();
    const e = await xsError(c.read('/xsc/errors/missing'));
    expect(e).toBeInstanceOf(XsError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('ENOENT');
    expect(e.requestType).toBe(MessageType.READ);
    expect(e.subject).toBe('/xsc/errors/missing');
    expect(e.message).toContain('ENOENT');
    expect(e.message).toContain('/xsc/errors/missing');
    expect(isXsError(e, 'ENOENT')).toBe(true);
    expect(isXsError(e, 'EINVAL')).toBe(false);

    expect(await codeOf(c.write('/xsc/errors/bad path', 'x'))).toBe('EINVAL');
    expect(await codeOf(c.write('/xsc/errors/trailing/', 'x'))).toBe('EINVAL');
    expect(await codeOf(c.read('/xsc//errors'))).toBe('EINVAL');
    expect(await codeOf(c.rm('/'))).toBe('EINVAL');
    expect(await codeOf(c.read('@releaseDomain'))).toBe('EINVAL');
    expect(await codeOf(c.unwatch('/xsc/errors', 'never-registered'))).toBe('ENOENT');
    await c.watch('/xsc/errors', 'dup');
    expect(await codeOf(c.watch('/xsc/errors', 'dup'))).toBe('EEXIST');
    expect(await codeOf(c.release(4321))).toBe('ENOENT');
    expect(await codeOf(c.control('no-such-command'))).toBe('EINVAL');
  });

  it('request() returns ERROR replies instead of throwing', async () => {
    const c = await connect();
    const removed = await c.request(20, Buffer.alloc(0)); // RESTRICT, gone
    expect(removed.type).toBe(MessageType.ERROR);
    expect(text(removed)).toBe('ENOSYS\0');
    const event = await c.request(MessageType.WATCH_EVENT, Buffer.from('/x\0t\0'));
    expect(text(event)).toBe('ENOSYS\0');
    const unknownTx = await c.request(MessageType.READ, Buffer.from('/\0'), 4242);
    expect([unknownTx.type, text(unknownTx), unknownTx.txId]).toEqual([MessageType.ERROR, 'ENOENT\0', 4242]);
    const ok = await c.request(MessageType.WRITE, Buffer.from('/xsc/raw\0v'));
    expect([ok.type, text(ok)]).toEqual([MessageType.WRITE, 'OK\0']);
    expect(ok.reqId).toBeGreaterThan(unknownTx.reqId);

    // TRANSACTION_START inside a transaction: EBUSY (tx id echoed in the header).
    const tx = await c.startTransaction();
    const nested = await c.request(MessageType.TRANSACTION_START, Buffer.from('\0'), tx.id);
    expect([nested.type, text(nested), nested.txId]).toEqual([MessageType.ERROR, 'EBUSY\0', tx.id]);
    await tx.abort();
  });

  it('a payload over 4096 bytes is refused locally with E2BIG and not sent', async () => {
    const c = await connect();
    const e = await xsError(c.write('/xsc/toolarge', Buffer.alloc(PAYLOAD_MAX)));
    expect(e.code).toBe('E2BIG');
    expect(e.message).toContain('not sent');
    // The connection survived (the daemon would have dropped it).
    await c.write('/xsc/toolarge', Buffer.alloc(PAYLOAD_MAX - '/xsc/toolarge'.length - 1));
    expect(c.isClosed).toBe(false);
  });
});

describe('pipelining', () => {
  it('sends many requests without waiting and matches replies by req_id', async () => {
    const c = await connect();
    const frames = recordFrames(c);
    const n = 200;
    const writes = Array.from({ length: n }, (_, i) => c.write(`/xsc/pipe/n${i}`, `v${i}`));
    const reads = Array.from({ length: n }, (_, i) => c.readString(`/xsc/pipe/n${i}`));
    const missing = c.read('/xsc/pipe/missing').catch((e: unknown) => e);
    await Promise.all(writes);
    expect(await Promise.all(reads)).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    expect((await missing as XsError).code).toBe('ENOENT');

    // C answers strictly in order: req_ids of the replies are increasing.
    const ids = frames.map((f) => f.reqId);
    expect(ids.length).toBe(2 * n + 1);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    expect(frames.slice(0, n).every((f) => f.type === MessageType.WRITE)).toBe(true);
    expect(frames[2 * n]!.type).toBe(MessageType.ERROR);
  });

  it('opens many connections at once (C listens with a backlog of 1)', async () => {
    const many = await Promise.all(Array.from({ length: 50 }, () => connect()));
    const paths = await Promise.all(many.map((c, i) => c.getDomainPath(i)));
    expect(paths).toEqual(many.map((_, i) => `/local/domain/${i}`));
    await Promise.all(many.map((c) => c.close()));
  });
});

describe('watches', () => {
  it('initial event comes after the WATCH reply; an own write is seen before its OK', async () => {
    const c = await connect();
    const frames = recordFrames(c);
    const seen: string[] = [];
    c.on('watch', (p, t) => seen.push(`${t}:${p}`));
    const events = c.watchEvents();

    await c.watch('/xsc/w1', 'tok');
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w1', token: 'tok' });
    expect(frames.map((f) => f.type)).toEqual([MessageType.WATCH, MessageType.WATCH_EVENT]);

    frames.length = 0;
    await c.write('/xsc/w1/a/b', 'x');
    // The 'watch' listener already ran when the write's promise settled.
    expect(seen).toEqual(['tok:/xsc/w1', 'tok:/xsc/w1/a/b']);
    expect(frames.map((f) => [f.type, text(f)])).toEqual([
      [MessageType.WATCH_EVENT, '/xsc/w1/a/b\0tok\0'],
      [MessageType.WRITE, 'OK\0'],
    ]);
    expect(frames[0]!.reqId).toBe(0);
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w1/a/b', token: 'tok' });
    await events.return!();
  });

  it('events interleaved with pipelined replies keep their order and are not lost', async () => {
    const c = await connect();
    const frames = recordFrames(c);
    const events = c.watchEvents();
    const emitted: WatchEvent[] = [];
    c.on('watch', (path, token) => emitted.push({ path, token }));
    await c.watch('/xsc/w2', 'w2');
    const n = 50;
    await Promise.all(Array.from({ length: n }, (_, i) => c.write(`/xsc/w2/n${i}`, String(i))));

    const expected = [{ path: '/xsc/w2', token: 'w2' }, ...Array.from({ length: n }, (_, i) => ({ path: `/xsc/w2/n${i}`, token: 'w2' }))];
    expect(emitted).toEqual(expected);
    const got: WatchEvent[] = [];
    for (let i = 0; i <= n; i++) got.push(await nextEvent(events));
    expect(got).toEqual(expected);

    // Frame by frame: each write's event immediately precedes its reply.
    const afterWatch = frames.slice(2);
    expect(afterWatch.length).toBe(2 * n);
    for (let i = 0; i < n; i++) {
      expect([afterWatch[2 * i]!.type, text(afterWatch[2 * i]!)]).toEqual([MessageType.WATCH_EVENT, `/xsc/w2/n${i}\0w2\0`]);
      expect(afterWatch[2 * i + 1]!.type).toBe(MessageType.WRITE);
    }
    await events.return!();
  });

  it('relative watches report relative paths; unwatch and resetWatches stop events', async () => {
    const c = await connect();
    const events = c.watchEvents();
    await c.watch('xsc-relw', 'rel');
    expect(await nextEvent(events)).toEqual({ path: 'xsc-relw', token: 'rel' });
    await c.write('/local/domain/0/xsc-relw/k', '1');
    expect(await nextEvent(events)).toEqual({ path: 'xsc-relw/k', token: 'rel' });

    await c.watch('/xsc/w3', 'a');
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w3', token: 'a' });
    await c.unwatch('xsc-relw', 'rel');
    await c.write('/local/domain/0/xsc-relw/k', '2');
    await c.write('/xsc/w3/x', '1');
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w3/x', token: 'a' });

    await c.resetWatches();
    await c.write('/xsc/w3/x', '2');
    await c.watch('/xsc/w3-marker', 'm');
    // Nothing between the reset and the marker's initial event.
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w3-marker', token: 'm' });
    await events.return!();
  });

  it('rm fires for the removed subtree root and watched descendants', async () => {
    const c = await connect();
    await c.write('/xsc/w4/a/b/c', '');
    const events = c.watchEvents();
    await c.watch('/xsc/w4', 'top');
    await c.watch('/xsc/w4/a/b/c', 'deep');
    expect((await nextEvent(events)).token).toBe('top');
    expect((await nextEvent(events)).token).toBe('deep');
    await c.rm('/xsc/w4/a');
    // Post-order: the deepest node first, the subtree root last.
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w4/a/b/c', token: 'deep' });
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w4/a', token: 'top' });
    await events.return!();
  });

  it('watch depth: EINVAL on 4.17, honoured on master', async () => {
    const c = await connect();
    if (daemon.compat === '4.17') {
      expect(await codeOf(c.watch('/xsc/w5', 'd', 1))).toBe('EINVAL');
      return;
    }
    const events = c.watchEvents();
    await c.watch('/xsc/w5', 'd', 1);
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w5', token: 'd' });
    await c.write('/xsc/w5/a/b', '');
    await c.write('/xsc/w5/c', '');
    expect(await nextEvent(events)).toEqual({ path: '/xsc/w5/c', token: 'd' });
    await events.return!();
  });

  it('an iterator created before WATCH sees the initial event; a late one does not', async () => {
    const c = await connect();
    const early = c.watchEvents();
    await c.watch('/xsc/w6', 'x');
    const late = c.watchEvents();
    await c.write('/xsc/w6', 'v');
    expect(await nextEvent(early)).toEqual({ path: '/xsc/w6', token: 'x' });
    expect(await nextEvent(early)).toEqual({ path: '/xsc/w6', token: 'x' });
    expect(await nextEvent(late)).toEqual({ path: '/xsc/w6', token: 'x' });
    await early.return!();
    expect(await early.next()).toEqual({ value: undefined, done: true });
    await late.return!();
  });
});

describe('DIRECTORY_PART fallback', () => {
  const dir = '/xsc/bigdir';
  // 150 names of 40 bytes (+NUL) = 6150 bytes of child list: over 4096.
  const names = Array.from({ length: 150 }, (_, i) => `child-${String(149 - i).padStart(3, '0')}-${'x'.repeat(30)}`);

  beforeAll(async () => {
    const c = await connect();
    await Promise.all(names.map((n) => c.write(`${dir}/${n}`, '')));
  });

  it('DIRECTORY answers E2BIG; directory() falls back and keeps the order', async () => {
    const c = await connect();
    const raw = await c.request(MessageType.DIRECTORY, Buffer.from(`${dir}\0`));
    expect([raw.type, text(raw)]).toEqual([MessageType.ERROR, 'E2BIG\0']);

    const frames = recordFrames(c);
    expect(await c.directory(dir)).toEqual(names);
    const types = frames.map((f) => f.type);
    expect(types[0]).toBe(MessageType.ERROR);
    expect(types.slice(1).every((t) => t === MessageType.DIRECTORY_PART)).toBe(true);
    expect(types.length).toBeGreaterThanOrEqual(3);
  });

  it('directoryPart() slices by byte offset and marks the last slice', async () => {
    const c = await connect();
    const all: string[] = [];
    let offset = 0;
    let generation: bigint | undefined;
    let parts = 0;
    for (;;) {
      const part = await c.directoryPart(dir, offset);
      parts++;
      generation ??= part.generation;
      expect(part.generation).toBe(generation);
      all.push(...part.names);
      expect(part.nextOffset).toBe(offset + part.names.reduce((n, s) => n + s.length + 1, 0));
      if (part.complete) break;
      expect(part.names.length).toBeGreaterThan(0);
      offset = part.nextOffset;
    }
    expect(all).toEqual(names);
    expect(parts).toBe(2);
    const past = await c.directoryPart(dir, 100_000);
    expect(past).toEqual({ generation, names: [], complete: true, nextOffset: 100_000 });
    const leaf = await c.directoryPart(`${dir}/${names[0]}`, 0);
    expect([leaf.names, leaf.complete]).toEqual([[], true]);
  });

  it('restarts the walk when the generation changes between slices', async () => {
    const c = await connect();
    const generations: string[] = [];
    let injected = false;
    const onFrame = (f: Frame) => {
      if (f.type !== MessageType.DIRECTORY_PART) return;
      generations.push(f.payload.toString('latin1', 0, f.payload.indexOf(0)));
      if (!injected) {
        injected = true;
        // Queued before directory() asks for the next slice: changes the child list.
        void c.write(`${dir}/zz-added`, '');
      }
    };
    c.on('frame', onFrame);
    const result = await c.directory(dir);
    c.off('frame', onFrame);
    expect(result).toEqual([...names, 'zz-added']);
    expect(new Set(generations).size).toBe(2);
    expect(generations.length).toBe(4); // 1 stale slice, then 2 slices of the new list
    await c.rm(`${dir}/zz-added`);
  });

  it('works inside a transaction, on the transaction view', async () => {
    const c = await connect();
    const tx = await c.startTransaction();
    await tx.write(`${dir}/zz-tx`, '');
    expect(await tx.directory(dir)).toEqual([...names, 'zz-tx']);
    expect(await c.directory(dir)).toEqual(names);
    await tx.abort();
  });
});

describe('transactions', () => {
  it('startTransaction: isolated writes, commit, abort', async () => {
    const c = await connect();
    await c.write('/xsc/tx/base', 'b');
    const tx = await c.startTransaction();
    expect(tx.id).toBeGreaterThan(0);
    expect(tx.txId).toBe(tx.id);
    await tx.write('/xsc/tx/new', 'n');
    await tx.mkdir('/xsc/tx/dir');
    await tx.rm('/xsc/tx/base');
    await tx.setPerms('/xsc/tx/new', ['n0', 'r9']);
    expect(await tx.readString('/xsc/tx/new')).toBe('n');
    expect(await tx.getPerms('/xsc/tx/new')).toEqual(['n0', 'r9']);
    expect(await tx.directory('/xsc/tx')).toEqual(['new', 'dir']);
    expect(await codeOf(c.read('/xsc/tx/new'))).toBe('ENOENT');
    expect(await c.readString('/xsc/tx/base')).toBe('b');
    await tx.commit();
    expect(await c.directory('/xsc/tx')).toEqual(['new', 'dir']);
    expect(await c.getPerms('/xsc/tx/new')).toEqual(['n0', 'r9']);
    // The daemon forgot the transaction.
    expect(await codeOf(tx.read('/xsc/tx/new'))).toBe('ENOENT');
    expect(await codeOf(tx.commit())).toBe('ENOENT');

    const tx2 = await c.startTransaction();
    expect(tx2.id).not.toBe(tx.id);
    await tx2.write('/xsc/tx/aborted', 'a');
    await tx2.abort();
    expect(await codeOf(c.read('/xsc/tx/aborted'))).toBe('ENOENT');
  });

  it('commit reports EAGAIN after a conflicting change', async () => {
    const c = await connect();
    const other = await connect();
    await c.write('/xsc/tx2/v', '1');
    const tx = await c.startTransaction();
    expect(await tx.readString('/xsc/tx2/v')).toBe('1');
    await other.write('/xsc/tx2/v', '2');
    await tx.write('/xsc/tx2/v', '3');
    expect(await codeOf(tx.commit())).toBe('EAGAIN');
    expect(await c.readString('/xsc/tx2/v')).toBe('2');
  });

  it('transaction() retries the whole callback on EAGAIN', async () => {
    const c = await connect();
    const other = await connect();
    await c.write('/xsc/tx3/counter', '0');
    const attempts: number[] = [];
    const ids: number[] = [];
    const result = await c.transaction(async (tx, attempt) => {
      attempts.push(attempt);
      ids.push(tx.id);
      const v = Number(await tx.readString('/xsc/tx3/counter'));
      // Forced conflict on the first attempt only.
      if (attempt === 0) await other.write('/xsc/tx3/counter', '100');
      await tx.write('/xsc/tx3/counter', String(v + 1));
      return v + 1;
    });
    expect(attempts).toEqual([0, 1]);
    expect(new Set(ids).size).toBe(2);
    expect(result).toBe(101);
    expect(await c.readString('/xsc/tx3/counter')).toBe('101');
  });

  it('transaction() gives up after `retries` and rethrows other errors after aborting', async () => {
    const c = await connect();
    const other = await connect();
    await c.write('/xsc/tx4/v', '0');
    let calls = 0;
    const e = await xsError(
      c.transaction(
        async (tx) => {
          calls++;
          await tx.read('/xsc/tx4/v');
          await other.write('/xsc/tx4/v', String(calls));
          await tx.write('/xsc/tx4/v', 'mine');
        },
        { retries: 2 },
      ),
    );
    expect(e.code).toBe('EAGAIN');
    expect(calls).toBe(3);
    expect(await c.readString('/xsc/tx4/v')).toBe('3');

    let txId = 0;
    const boom = new Error('boom');
    await expect(
      c.transaction(async (tx) => {
        txId = tx.id;
        await tx.write('/xsc/tx4/never', 'x');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await codeOf(c.read('/xsc/tx4/never'))).toBe('ENOENT');
    const gone = await c.request(MessageType.READ, Buffer.from('/\0'), txId);
    expect(text(gone)).toBe('ENOENT\0'); // aborted: the id is unknown now
  });
});

describe('domains', () => {
  it('introduce, isDomainIntroduced, setTarget, resume, release, special watch events', async () => {
    const c = await connect();
    const events = c.watchEvents();
    await c.watch('@introduceDomain', 'intro');
    await c.watch('@releaseDomain', 'rel');
    expect(await nextEvent(events)).toEqual({ path: '@introduceDomain', token: 'intro' });
    expect(await nextEvent(events)).toEqual({ path: '@releaseDomain', token: 'rel' });

    expect(await c.isDomainIntroduced(21)).toBe(false);
    await c.introduce(21, 0x1234n, 9);
    expect(await nextEvent(events)).toEqual({ path: '@introduceDomain', token: 'intro' });
    expect(await c.isDomainIntroduced(21)).toBe(true);
    await c.introduce(22, 0x1235, 10);
    expect(await nextEvent(events)).toEqual({ path: '@introduceDomain', token: 'intro' });
    await c.setTarget(22, 21);
    expect(await codeOf(c.setTarget(22, 4000))).toBe('ENOENT');
    await c.resume(21);
    expect(await codeOf(c.resume(4000))).toBe('ENOENT');
    expect(await codeOf(c.introduce(23, 1, 0))).toBe('EINVAL'); // event channel 0

    // Release the domain holding the target first: C 4.17 keeps a released
    // target domain alive (still introduced, no event) while another domain
    // targets it, and crashes on a later double RELEASE.
    await c.release(22);
    expect(await nextEvent(events)).toEqual({ path: '@releaseDomain', token: 'rel' });
    expect(await c.isDomainIntroduced(22)).toBe(false);
    await c.release(21);
    expect(await nextEvent(events)).toEqual({ path: '@releaseDomain', token: 'rel' });
    expect(await c.isDomainIntroduced(21)).toBe(false);
    expect(await codeOf(c.release(21))).toBe('ENOENT');
    expect(await c.getDomainPath(17)).toBe('/local/domain/17');
    await events.return!();
  });

  it('features and quotas: ENOSYS on 4.17, values on master', async () => {
    const c = await connect();
    if (daemon.compat === '4.17') {
      expect(await codeOf(c.getFeature())).toBe('ENOSYS');
      expect(await codeOf(c.getFeature(0))).toBe('ENOSYS');
      expect(await codeOf(c.setFeature(31, 2))).toBe('ENOSYS');
      expect(await codeOf(c.getQuota())).toBe('ENOSYS');
      expect(await codeOf(c.getQuota('nodes'))).toBe('ENOSYS');
      expect(await codeOf(c.getQuota(0, 'nodes'))).toBe('ENOSYS');
      expect(await codeOf(c.setQuota('nodes', 2000))).toBe('ENOSYS');
      expect(await codeOf(c.setQuota(0, 'nodes', 2000))).toBe('ENOSYS');
      return;
    }
    expect(await c.getFeature()).toBe(14);
    await c.setFeature(31, 2);
    expect(await c.getFeature(31)).toBe(2);
    expect(await c.getQuota()).toContain('nodes');
    expect(await c.getQuota('nodes')).toBe(1000);
    await c.setQuota(31, 'nodes', 50);
    expect(await c.getQuota(31, 'nodes')).toBe(50);
    await c.setQuota('nodes', 1000);
    expect(await codeOf(c.getQuota('no-such-quota'))).toBe('EINVAL');
  });

  it('control returns the raw reply', async () => {
    const c = await connect();
    expect((await c.control('print', 'xsclient test')).toString('latin1')).toBe('OK\0');
    const help = (await c.control('help')).toString('latin1');
    expect(help).toContain('print');
    expect(help).toContain('quota');
  });
});

describe('connection loss and close', () => {
  it('daemon drops the connection: pending requests reject, close is emitted', async () => {
    const c = await connect();
    const events = c.watchEvents();
    const closed = new Promise<XsConnectionError | undefined>((resolve) => c.once('close', resolve));
    await c.write('/xsc/loss', 'x');
    // An oversized frame makes C drop the connection; the READ behind it never gets a reply.
    const oversized = c.request(MessageType.WRITE, Buffer.alloc(PAYLOAD_MAX + 1));
    const read = c.read('/xsc/loss');
    const [e1, e2] = await Promise.all([oversized.catch((e: unknown) => e), read.catch((e: unknown) => e)]);
    expect(e1).toBeInstanceOf(XsConnectionError);
    expect(e2).toBeInstanceOf(XsConnectionError);
    expect((e2 as Error).message).toMatch(/lost.*no reply to READ "\/xsc\/loss"/);
    const why = await closed;
    expect(why).toBeInstanceOf(XsConnectionError);
    expect(c.isClosed).toBe(true);
    await expect(events.next()).rejects.toBeInstanceOf(XsConnectionError);
    await expect(c.read('/xsc/loss')).rejects.toThrow(/cannot send READ/);
    await c.close(); // harmless
  });

  it('close(): pending requests reject, iterators end, close carries no error', async () => {
    const c = await XsClient.connect(daemon.socketPath);
    const events = c.watchEvents();
    let closeArg: unknown = 'not emitted';
    c.once('close', (e) => {
      closeArg = e;
    });
    const pending = c.read('/xsc/close').catch((e: unknown) => e);
    await c.close();
    expect(closeArg).toBeUndefined();
    const e = await pending;
    expect(e).toBeInstanceOf(XsConnectionError);
    expect((e as Error).message).toContain('closed by the client');
    expect(await events.next()).toEqual({ value: undefined, done: true });
    await expect(c.write('/xsc/close', 'x')).rejects.toBeInstanceOf(XsConnectionError);
  });

  it('connect to a missing socket fails with XsConnectionError', async () => {
    await expect(XsClient.connect(path.join(os.tmpdir(), 'no-such-xenstored-socket'))).rejects.toBeInstanceOf(XsConnectionError);
  });
});

// ---------------------------------------------------------------------------
// A scripted server: each request frame is handed to `onRequest`, which
// decides what to send back.

interface FakeServer {
  socketPath: string;
  close(): Promise<void>;
}

/** Fake servers and their clients, cleaned up after each test even when it fails. */
const fakes: FakeServer[] = [];
const fakeClients: XsClient[] = [];

async function connectFake(srv: FakeServer): Promise<XsClient> {
  const c = await XsClient.connect(srv.socketPath);
  fakeClients.push(c);
  return c;
}

async function fakeServer(onRequest: (frame: Frame, sock: net.Socket) => void): Promise<FakeServer> {
  const dir = fs.mkdtempSync(path.join('/tmp', 'xsc-fake-'));
  const socketPath = path.join(dir, 'socket');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) onRequest(f, sock);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  let closing: Promise<void> | undefined;
  const fake: FakeServer = {
    socketPath,
    close: () =>
      (closing ??= (async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        fs.rmSync(dir, { recursive: true, force: true });
      })()),
  };
  fakes.push(fake);
  return fake;
}

const reply = (req: Frame, payload: string, type = req.type, reqId = req.reqId): Buffer =>
  encodeFrame({ type, reqId, txId: req.txId, payload: Buffer.from(payload, 'latin1') });

describe('reply matching (fake server)', () => {
  afterEach(async () => {
    await Promise.all(fakeClients.splice(0).map((c) => c.close()));
    await Promise.all(fakes.splice(0).map((f) => f.close()));
  });

  it('matches out-of-order replies by req_id', async () => {
    const held: Frame[] = [];
    const srv = await fakeServer((f, sock) => {
      held.push(f);
      if (held.length === 3) {
        // Answer in reverse order, with an event in the middle.
        for (const r of [...held].reverse()) {
          sock.write(reply(r, `value-of-${r.payload.toString('latin1', 0, r.payload.length - 1)}`));
          if (r === held[1]) sock.write(encodeFrame({ type: MessageType.WATCH_EVENT, reqId: 0, txId: 0, payload: Buffer.from('/ev\0t\0') }));
        }
      }
    });
    const c = await connectFake(srv);
    const seen: string[] = [];
    c.on('watch', (p) => seen.push(p));
    const results = await Promise.all(['/a', '/b', '/c'].map((p) => c.readString(p)));
    expect(results).toEqual(['value-of-/a', 'value-of-/b', 'value-of-/c']);
    expect(seen).toEqual(['/ev']);
    expect(held.map((f) => f.reqId)).toEqual([1, 2, 3]);
  });

  it('a reply with an unknown req_id abandons the connection', async () => {
    const srv = await fakeServer((f, sock) => sock.write(reply(f, 'x', f.type, f.reqId + 1000)));
    const c = await connectFake(srv);
    const closed = new Promise<XsConnectionError | undefined>((resolve) => c.once('close', resolve));
    const e = await c.read('/a').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(XsConnectionError);
    expect((e as Error).message).toContain('matches no request in flight');
    expect((e as Error).cause).toBeInstanceOf(XsConnectionError);
    expect(((e as Error).cause as Error).cause).toBeInstanceOf(XsProtocolError);
    expect(await closed).toBeInstanceOf(XsConnectionError);
  });

  it('a reply of the wrong type rejects that request only', async () => {
    const srv = await fakeServer((f, sock) => {
      const path = f.payload.toString('latin1', 0, f.payload.indexOf(0));
      sock.write(path === '/wrong' ? reply(f, 'OK\0', MessageType.WRITE) : reply(f, 'fine'));
    });
    const c = await connectFake(srv);
    await expect(c.read('/wrong')).rejects.toBeInstanceOf(XsProtocolError);
    expect(await c.readString('/right')).toBe('fine');
    // request() returns whatever came back.
    const raw = await c.request(MessageType.READ, Buffer.from('/wrong\0'));
    expect(raw.type).toBe(MessageType.WRITE);
  });

  it('a reply longer than 4096 bytes abandons the connection', async () => {
    const srv = await fakeServer((f, sock) => sock.write(reply(f, 'x'.repeat(PAYLOAD_MAX + 1))));
    const c = await connectFake(srv);
    await expect(c.read('/a')).rejects.toThrow(/cannot frame/);
    expect(c.isClosed).toBe(true);
  });

  it('the server closing mid-request rejects with a clear error', async () => {
    const srv = await fakeServer((_f, sock) => sock.end());
    const c = await connectFake(srv);
    const e = await c.write('/p', 'v').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(XsConnectionError);
    expect((e as Error).message).toMatch(/connection to .* was lost; no reply to WRITE "\/p"/);
  });

  it('directory() restarts DIRECTORY_PART and handles the final double NUL', async () => {
    let gen = 7;
    let served = 0;
    const list = ['aa', 'bbb', 'c'];
    const srv = await fakeServer((f, sock) => {
      if (f.type === MessageType.DIRECTORY) {
        sock.write(reply(f, 'E2BIG\0', MessageType.ERROR));
        return;
      }
      const offset = Number(f.payload.toString('latin1').split('\0')[1]);
      served++;
      if (served === 2) gen = 8; // the node changed after the first slice
      // One name per slice.
      const flat = list.map((n) => `${n}\0`).join('');
      const name = flat.slice(offset).split('\0')[0]!;
      const last = offset + name.length + 1 >= flat.length;
      sock.write(reply(f, `${gen}\0${name}\0${last ? '\0' : ''}`));
    });
    const c = await connectFake(srv);
    expect(await c.directory('/d')).toEqual(list);
    expect(served).toBe(2 + 3); // a slice, one with a new generation, then all three again
  });
});
