/**
 * examples/property-test as a user's project: the packed tarball of this
 * checkout installed into a fresh copy of it, then its own `npm test`
 * (tsc against the published typings, then vitest). A broken export,
 * typing or packaging step fails here.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/sim-daemon.js';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'property-test');
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-example-'));
afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

/** Runs npm in `cwd`; throws with its whole output when it fails. */
function npm(cwd: string, args: string[]): string {
  try {
    return execFileSync('npm', [...args, '--no-audit', '--no-fund'], { cwd, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} in ${cwd} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}${err.message}`);
  }
}

it('installs the packed tarball and passes its live-update property test', { timeout: 600_000 }, () => {
  for (const file of fs.readdirSync(EXAMPLE).filter((f) => !['node_modules', 'package-lock.json'].includes(f) && !f.endsWith('.tgz'))) {
    fs.copyFileSync(path.join(EXAMPLE, file), path.join(project, file));
  }
  // --ignore-scripts: dist/ is already built for this run; rebuilding it here would change it under other test files.
  const tarball = npm(REPO_ROOT, ['pack', '--ignore-scripts', '--pack-destination', project]).trim().split('\n').pop()!;
  fs.renameSync(path.join(project, tarball), path.join(project, 'xenstored-sim.tgz'));
  npm(project, ['install', '--prefer-offline']);
  const packed = path.join(project, 'node_modules', 'xenstored-sim');
  expect(fs.existsSync(path.join(packed, 'dist', 'testing', 'index.d.ts'))).toBe(true);
  expect(fs.existsSync(path.join(packed, 'dist', 'bench'))).toBe(false);
  expect(fs.existsSync(path.join(packed, 'test'))).toBe(false);
  expect(npm(project, ['test'])).toMatch(/Tests +3 passed/);
});
