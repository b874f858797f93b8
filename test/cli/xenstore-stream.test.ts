import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../src/stream/records.js';
import { encodeStream } from '../../src/stream/stream-writer.js';
import { AT, GOLDEN_BYTES, GOLDEN_RECORDS } from '../liveupdate/golden.js';
import { patch } from '../liveupdate/stream-builder.js';
import { ensureBuilt } from '../helpers/sim-daemon.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/xenstore-stream.js');
let dir = '';

/** Runs the compiled CLI. */
function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function file(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

beforeAll(() => {
  // Node 20 cannot run the TypeScript source: the bin is the one `npm run build` bundled.
  ensureBuilt();
  if (!existsSync(CLI)) throw new Error(`build did not produce ${CLI}`);
  dir = mkdtempSync(join(tmpdir(), 'xenstore-stream-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('xenstore-stream verify', () => {
  it('reports a valid stream', () => {
    expect(run('verify', file('golden.bin', GOLDEN_BYTES))).toEqual({
      status: 0, stdout: 'OK: 5 records, version 2, little-endian\n', stderr: '',
    });
  });

  it('reports the first malformed record with its offset', () => {
    const result = run('verify', file('bad.bin', patch(GOLDEN_BYTES, AT.local + 16, 40)));
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('xenstore-stream: NODE_DATA #4 at offset 0x80: path-len 40 runs past the record end (body 32 bytes)\n');
  });

  it('reports an inconsistent stream', () => {
    const records = [GOLDEN_RECORDS[4], GOLDEN_RECORDS[4]] as StreamRecord[];
    const result = run('verify', file('dup.bin', encodeStream({ version: 2, bigEndian: false }, records)));
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('xenstore-stream: NODE_DATA #1 at offset 0x38: committed node /local already restored by NODE_DATA #0\n');
  });
});

describe('xenstore-stream inspect', () => {
  it('lists every record with its offset and fields', () => {
    const result = run('inspect', file('golden.bin', GOLDEN_BYTES));
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'xenstore stream: version 2, little-endian, 176 bytes',
      '0x000010  #0     GLOBAL_DATA         socket-fd=3 evtchn-fd=4',
      '0x000020  #1     CONNECTION_DATA     conn-id=1 ring domid=1 tdomid=0x7ff4 evtchn=7 unique-id=0x1122334455667788 in="" out="" out-resp-len=0',
      '0x000048  #2     WATCH_DATA          conn-id=1 path="foo" token="t"',
      '0x000060  #3     NODE_DATA           path="/" perms=n0 value=""',
      '0x000080  #4     NODE_DATA           path="/local" perms=n0,r1 value="x"',
      '0x0000a8         END',
      '',
    ]);
  });

  it('escapes and truncates values', () => {
    const value = Buffer.concat([Buffer.from('a"\\\n\x00'), Buffer.alloc(60, 0x41)]);
    const record: StreamRecord = { ...(GOLDEN_RECORDS[3] as Extract<StreamRecord, { kind: 'node' }>), value };
    const result = run('inspect', file('value.bin', encodeStream({ version: 2, bigEndian: false }, [record])));
    expect(result.stdout).toContain(`value="a\\"\\\\\\x0a\\x00${'A'.repeat(43)}"… (65 bytes)`);
  });

  it('shows the records before a problem, then the problem', () => {
    const result = run('inspect', file('bad.bin', patch(GOLDEN_BYTES, AT.local + 24, 0x78)));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('#3     NODE_DATA           path="/"');
    expect(result.stdout).not.toContain('END');
    expect(result.stderr).toContain("NODE_DATA #4 at offset 0x80: perm #0 has perm byte 0x78, not one of 'n', 'r', 'w', 'b'");
  });

  it('prints JSON with --json', () => {
    const result = run('inspect', file('golden.bin', GOLDEN_BYTES), '--json');
    expect(result.status).toBe(0);
    const json = JSON.parse(result.stdout) as { version: number; bigEndian: boolean; records: Record<string, unknown>[] };
    expect(json.version).toBe(2);
    expect(json.bigEndian).toBe(false);
    expect(json.records[1]).toMatchObject({ offset: 0x20, type: 'CONNECTION_DATA', uniqueId: '0x1122334455667788', inData: '' });
    expect(json.records[4]).toMatchObject({ offset: 0x80, type: 'NODE_DATA', path: '/local', value: '78' });
  });
});

describe('xenstore-stream convert', () => {
  it('converts version and byte order without loss, both ways', () => {
    const v1be = join(dir, 'v1be.bin');
    expect(run('convert', file('golden.bin', GOLDEN_BYTES), v1be, '--version', '1', '--big-endian')).toEqual({
      status: 0, stdout: `wrote ${v1be}: 5 records, version 1, big-endian, 176 bytes\n`, stderr: '',
    });
    expect(run('verify', v1be).stdout).toBe('OK: 5 records, version 1, big-endian\n');
    const back = join(dir, 'back.bin');
    expect(run('convert', v1be, back, '--version', '2', '--little-endian').status).toBe(0);
    expect(readFileSync(back).equals(GOLDEN_BYTES)).toBe(true);
  });

  it('refuses a conversion that would lose a watch depth', () => {
    const records = [...GOLDEN_RECORDS, { kind: 'watch', connId: 1, path: '/local', token: 'd', depth: 2 } as StreamRecord];
    const out = join(dir, 'lossy.bin');
    const result = run('convert', file('depth.bin', encodeStream({ version: 2, bigEndian: false }, records)), out, '--version', '1');
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('xenstore-stream: refusing to convert, information would be lost: '
      + 'WATCH_DATA_EXTENDED #5: depth 2 cannot be expressed in version 1 (WATCH_DATA has no depth)\n');
    expect(existsSync(out)).toBe(false);
  });
});

describe('xenstore-stream usage', () => {
  it.each([
    [[], 'no command given'],
    [['frob'], 'unknown command "frob"'],
    [['verify'], 'verify takes 1 file name(s), got 0'],
    [['verify', 'a', '--json'], 'verify does not accept --json'],
    [['convert', 'a', 'b', '--version'], '--version needs a value'],
    [['convert', 'a', 'b', '--version', '3'], '--version must be 1 or 2, not "3"'],
    [['convert', 'a', 'b', '--big-endian', '--little-endian'], '--big-endian and --little-endian exclude each other'],
  ])('%j → exit 2', (args, message) => {
    const gold = file('golden.bin', GOLDEN_BYTES);
    const result = run(...args.map((a) => (a === 'a' ? gold : a === 'b' ? join(dir, 'out.bin') : a)));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^xenstore-stream: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\nusage:`));
  });

  it('reports an unreadable file with exit 2', () => {
    const result = run('verify', join(dir, 'missing.bin'));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^xenstore-stream: ENOENT: no such file or directory/);
  });

  it('prints help', () => {
    const result = run('--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: xenstore-stream inspect FILE \[--json\]/);
  });
});
