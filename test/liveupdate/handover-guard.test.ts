/**
 * The guard wrapper on its own (src/liveupdate/handover-guard.ts): the
 * /bin/sh command a live update execs. Stand-in images are shell lines, so
 * each case shows exactly what the wrapper hands on: the new image gets its
 * own words (spaces and quotes intact) under the wrapper's pid; the guard
 * stands down once the copy is emptied; and when the image exits or hangs,
 * the previous image's words run with the fallback flag and the state copy.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INHERITED_FDS_ENV } from '../../src/liveupdate/exec-image.js';
import { FALLBACK_ENV, guardedCommand, STATE_COPY_ENV, writeStateCopy } from '../../src/liveupdate/handover-guard.js';
import type { Image } from '../../src/liveupdate/reexec-update.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForFile(file: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    await sleep(20);
  }
  await sleep(50);
  return fs.readFileSync(file, 'utf8');
}

/** A stand-in image: `line` run by sh, with `words` after it as $1, $2, ... */
const shImage = (line: string, ...words: string[]): Image => ({ execPath: '/bin/sh', args: ['-c', line, 'image', ...words] });

/** Runs the wrapper as a live update would, the state copy as its only (and so last) inherited descriptor. */
function runGuarded(image: Image, previous: Image, timeoutMs: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-guard-'));
  dirs.push(dir);
  const copy = writeStateCopy(dir, Buffer.from('the whole state'));
  const command = guardedCommand(image, previous, timeoutMs);
  const child = spawn(command.execPath, command.args, {
    cwd: dir,
    env: { ...process.env, [INHERITED_FDS_ENV]: '3', [STATE_COPY_ENV]: '1' },
    stdio: ['ignore', 'ignore', 'pipe', copy],
  });
  fs.closeSync(copy);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  return { dir, pid: child.pid!, exited, stderr: () => stderr };
}

/** The previous image: records its words, the fallback flag and what it reads from the copy. */
const previous = shImage('printf "%s|" "$@" > previous-words; printf "%s" "$' + FALLBACK_ENV + '" > previous-flag; cat /proc/self/fd/3 > previous-state', 'with space', "it's");

describe('the live-update guard wrapper', () => {
  it('execs the new image in its own process with exactly its words; the guard stands down once the copy is emptied', async () => {
    const image = shImage(': > /proc/self/fd/3; echo $$ > image-pid; printf "%s|" "$@" > image-words; sleep 0.3', 'a b', "c'd", '');
    const run = runGuarded(image, previous, 60_000);
    expect(await waitForFile(path.join(run.dir, 'image-words'))).toBe("a b|c'd||");
    expect(Number(fs.readFileSync(path.join(run.dir, 'image-pid'), 'utf8'))).toBe(run.pid);
    expect(await run.exited).toBe('0');
    await sleep(300);
    expect(fs.existsSync(path.join(run.dir, 'previous-words'))).toBe(false);
    expect(run.stderr()).toBe('');
  });

  it('an image that exits without restoring: the previous image runs with its words, the fallback flag and the copy', async () => {
    const run = runGuarded(shImage('exit 3'), previous, 60_000);
    expect(await run.exited).toBe('3');
    expect(await waitForFile(path.join(run.dir, 'previous-state'))).toBe('the whole state');
    expect(fs.readFileSync(path.join(run.dir, 'previous-words'), 'utf8')).toBe("with space|it's|");
    expect(fs.readFileSync(path.join(run.dir, 'previous-flag'), 'utf8')).toBe('1');
    expect(run.stderr()).toContain('the new image exited; starting the previous image');
  });

  it('an image that hangs past the timeout is killed, and the previous image runs', async () => {
    const run = runGuarded(shImage('exec sleep 600'), previous, 100);
    expect(await run.exited).toBe('SIGKILL');
    expect(await waitForFile(path.join(run.dir, 'previous-state'))).toBe('the whole state');
    expect(run.stderr()).toContain('did not restore in time; killed it');
  });
});
