/**
 * Restore applies committed nodes as it reads them, finding each parent on
 * the branch it has just restored. Streams need not list nodes depth first,
 * though (only parents before children), so every order must give the same
 * tree, and a stream that breaks the rules must still be refused.
 */
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/daemon/options.js';
import type { NodeRecord, StreamRecord } from '../../src/stream/records.js';
import { NO_SOCKETS, restoreDaemon } from '../../src/liveupdate/state-restore.js';
import { StreamError } from '../../src/stream/stream-error.js';
import { encodeStream } from '../../src/stream/stream-writer.js';

const options = parseOptions([], { XENSTORED_RUNDIR: '/tmp/xenstored-sim-restore-order' });

function node(path: string, value = path): NodeRecord {
  return { kind: 'node', connId: 0, txId: 0, path, value: Buffer.from(value, 'latin1'), access: 0, perms: [{ perm: 'n', stale: false, domid: 0 }] };
}

function restore(paths: string[]) {
  const records: StreamRecord[] = [{ kind: 'global', socketFd: -1, evtchnFd: -1 }, ...['/', ...paths].map((p) => node(p))];
  return restoreDaemon(options, encodeStream({ version: 2, bigEndian: false }, records), NO_SOCKETS).daemon;
}

/** Every node as path=value, children in stored order. */
function tree(paths: string[]): string[] {
  const { store } = restore(paths);
  const out: string[] = [];
  const walk = (p: string) => {
    const n = store.lookup(p)!;
    out.push(`${p}=${n.value}`);
    for (const name of n.children?.names() ?? []) walk(p === '/' ? `/${name}` : `${p}/${name}`);
  };
  walk('/');
  return out;
}

const depthFirst = ['/a', '/a/x', '/a/x/deep', '/a/y', '/b', '/b/z'];

describe('restore: node order in the stream', () => {
  it.each([
    ['depth first', depthFirst],
    ['breadth first', ['/a', '/b', '/a/x', '/a/y', '/b/z', '/a/x/deep']],
    ['branches interleaved', ['/b', '/a', '/b/z', '/a/x', '/a/y', '/a/x/deep']],
  ])('%s gives the same nodes', (_, order) => {
    const nodes = tree(order).sort();
    expect(nodes).toEqual(['/=/', ...depthFirst.map((p) => `${p}=${p}`)].sort());
  });

  it('children keep the order the stream gives them', () => {
    expect(tree(['/a', '/a/y', '/a/x'])).toEqual(['/=/', '/a=/a', '/a/y=/a/y', '/a/x=/a/x']);
  });

  it.each([
    ['a child before its parent', ['/a/x', '/a'], 'parent /a of /a/x is neither pre-existing nor restored'],
    ['a node restored twice, after the branch moved on', ['/a', '/a/x', '/b', '/a/x'], 'committed node /a/x already restored by NODE_DATA #3'],
  ])('%s is refused', (_, order, message) => {
    expect(() => restore(order)).toThrow(StreamError);
    expect(() => restore(order)).toThrow(message);
  });
});
