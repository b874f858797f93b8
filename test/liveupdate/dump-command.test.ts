/**
 * CONTROL `dump`: the whole running state to a file at any time, in the
 * full format or in the version-1 subset C xenstored 4.17 reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { parseOptions } from '../../src/daemon/options.js';
import { NO_SOCKETS, restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';

tearDownAfterEach();

async function setUp(compat: string) {
  const d = await startDaemon(['--compat', compat]);
  const { rundir } = d.options;
  const options = d.options;
  const c = await connect(d.options.socketPath);
  await c.call(T.WRITE, '/x/y\0bin\0ary');
  await c.call(T.SET_PERMS, '/x/y\0n0\0r5\0');
  await c.call(T.WATCH, 'rel\0tok\0');
  await c.call(T.TRANSACTION_START, '\0');
  return { d, c, rundir, options };
}

function tree(d: Daemon): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const n = d.store.lookup(p)!;
    out.push(`${p}=${n.value}:${n.perms.map((e) => `${e.bits}/${e.domid}`).join(',')}`);
    for (const name of n.children?.names() ?? []) walk(p === '/' ? `/${name}` : `${p}/${name}`);
  };
  walk('/');
  return out;
}

describe('CONTROL dump', () => {
  it('writes the full state, transactions included, and it restores', async () => {
    const { d, c, rundir, options } = await setUp('master');
    expect((await c.call(T.CONTROL, 'dump\0full.xs\0')).text).toBe('OK\0');
    const stream = fs.readFileSync(path.join(rundir, 'full.xs'));
    const decoded = decodeStream(stream);
    expect(decoded.version).toBe(2);
    const kinds = new Set(decoded.records.map((r) => r.record.kind));
    for (const kind of ['global', 'globalQuota', 'connection', 'watch', 'transaction', 'node', 'domain', 'unknown']) expect(kinds).toContain(kind);
    const restored = restoreDaemon(options, stream, NO_SOCKETS, () => {}).daemon;
    expect(tree(restored)).toEqual(tree(d));
  });

  it('--c417 writes a version-1 stream with only what C xenstored 4.17 reads', async () => {
    const { d, c, rundir } = await setUp('4.17');
    expect((await c.call(T.CONTROL, 'dump\0--c417\0old.xs\0')).text).toBe('OK\0');
    const stream = fs.readFileSync(path.join(rundir, 'old.xs'));
    const decoded = decodeStream(stream);
    expect(decoded.version).toBe(1);
    expect(new Set(decoded.records.map((r) => r.record.kind))).toEqual(new Set(['global', 'connection', 'watch', 'node']));
    // As 4.17 writes them: the special nodes first, then the tree from /.
    const nodes = decoded.records.flatMap((r) => (r.record.kind === 'node' ? [r.record.path] : []));
    expect(nodes.slice(0, 3)).toEqual(['@releaseDomain', '@introduceDomain', '/']);
    const options = parseOptions(['--compat', '4.17'], { XENSTORED_RUNDIR: rundir });
    expect(tree(restoreDaemon(options, stream, NO_SOCKETS, () => {}).daemon)).toEqual(tree(d));
  });

  it('answers a missing file name with EINVAL and an unwritable path with the error text', async () => {
    const { c } = await setUp('master');
    expect((await c.call(T.CONTROL, 'dump\0')).text).toBe('EINVAL\0');
    expect((await c.call(T.CONTROL, 'dump\0/nonexistent/dir/x.xs\0')).text).toMatch(/^ENOENT: /);
  });
});
