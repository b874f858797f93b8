/**
 * Where the real clients and the xenstored-ref kit live, shared by the tests
 * that need them. A missing requirement fails a test under CI and skips it
 * loudly otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ciIsSet } from '../reporters/summary-line.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CI = ciIsSet();
export const XS_REF_HOME = process.env.XS_REF_HOME || '/var/cache/xenstored-ref';
/** pyxs is installed for the system Python, which may not be the python3 first on PATH. */
export const PYTHON = '/usr/bin/python3';
export const KIT_CANDIDATES = [
  process.env.XS_REF_KIT,
  path.resolve(REPO_ROOT, '..', 'shared', 'peers', 'xenstored-ref'),
  '/work/shared/peers/xenstored-ref',
].filter((d): d is string => !!d);

/** The kit folder holding `file`, if any. */
export function findKit(file: string): string | undefined {
  return KIT_CANDIDATES.find((d) => fs.existsSync(path.join(d, file)));
}

/** Is `cmd` an executable somewhere on PATH? */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
