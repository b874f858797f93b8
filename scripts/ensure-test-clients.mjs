#!/usr/bin/env node
// Runs before `npm test`: makes sure the real XenStore clients the
// end-to-end tests use are installed (Debian's xenstore-utils and
// python3-pyxs, and C xenstored 4.17 with test-xenstore unpacked by the
// xenstored-ref kit). Does nothing when they are; otherwise runs the kit's
// setup.sh, which needs root and Debian's package archive.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const home = process.env.XS_REF_HOME || '/var/cache/xenstored-ref';
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const ready =
  ['xenstore-read', 'xenstore-ls', 'xenstore-watch'].every(has) &&
  fs.existsSync(path.join(home, 'usr/lib/xen-4.17/bin/test-xenstore')) &&
  fs.existsSync(path.join(home, 'out/xsshim.so')) &&
  spawnSync('/usr/bin/python3', ['-c', 'import pyxs'], { stdio: 'ignore' }).status === 0;
if (ready) process.exit(0);

const kit = [process.env.XS_REF_KIT, path.join(repo, '../shared/peers/xenstored-ref'), '/work/shared/peers/xenstored-ref']
  .find((k) => k && fs.existsSync(path.join(k, 'setup.sh')));
if (!kit) {
  console.error('pretest: the real clients are missing and the xenstored-ref kit was not found (set XS_REF_KIT)');
  process.exit(process.env.CI ? 1 : 0);
}
console.error(`pretest: installing the real clients with ${kit}/setup.sh`);
try {
  execFileSync('bash', [path.join(kit, 'setup.sh')], { stdio: 'inherit' });
} catch {
  console.error('pretest: setup.sh failed (it needs root and the Debian archive)');
  process.exit(1);
}
