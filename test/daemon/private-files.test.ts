/** The daemon's own files: owner-only, and never written or read through a symbolic link. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendPrivateFile, readFileNoFollow, writePrivateFile } from '../../src/daemon/private-files.js';

let dir: string;
let victim: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-files-'));
  victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious', { mode: 0o644 });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (file: string) => fs.lstatSync(file).mode & 0o777;

describe('writePrivateFile', () => {
  it('creates the file 0600 and replaces an existing one (which may have had wider modes)', () => {
    const file = path.join(dir, 'dump');
    fs.writeFileSync(file, 'old', { mode: 0o666 });
    fs.chmodSync(file, 0o666);
    writePrivateFile(file, 'new');
    expect([fs.readFileSync(file, 'utf8'), mode(file)]).toEqual(['new', 0o600]);
  });

  it('replaces a symbolic link with a file and leaves its target alone', () => {
    const link = path.join(dir, 'state_dump');
    fs.symlinkSync(victim, link);
    writePrivateFile(link, 'state');
    expect(fs.lstatSync(link).isFile()).toBe(true);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
  });

  it('refuses a directory with an error, not a crash', () => {
    expect(() => writePrivateFile(dir, 'x')).toThrow(/EEXIST|EISDIR/);
  });
});

describe('appendPrivateFile and readFileNoFollow', () => {
  it('append creates 0600 and appends', () => {
    const log = path.join(dir, 'log');
    appendPrivateFile(log, 'a\n');
    appendPrivateFile(log, 'b\n');
    expect([fs.readFileSync(log, 'utf8'), mode(log)]).toEqual(['a\nb\n', 0o600]);
  });

  it('neither appends to nor reads through a symbolic link', () => {
    const link = path.join(dir, 'link');
    fs.symlinkSync(victim, link);
    expect(() => appendPrivateFile(link, 'x')).toThrow(/ELOOP/);
    expect(() => readFileNoFollow(link)).toThrow(/ELOOP/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileNoFollow(victim).toString()).toBe('precious');
  });
});
