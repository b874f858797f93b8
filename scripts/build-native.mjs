#!/usr/bin/env node
// Builds the optional native addon build/Release/xs_execve.node (native/execve.c),
// which lets live update re-exec the daemon in place (same PID, sockets kept).
//
// Runs from package.json "install". It never downloads anything and never fails
// the install: node-gyp is pointed at headers that ship with the running Node
// (--nodedir), and if they, node-gyp, python, make or a C compiler are missing,
// or the build fails, it prints one line and exits 0 — live update then uses the
// spawn fallback (src/liveupdate/exec-image.ts).
//
// Environment:
//   XENSTORED_SIM_NO_NATIVE=1   skip the build (the runtime honours it too)
//   XENSTORED_SIM_NODEDIR=DIR   Node headers root (DIR/include/node/node_api.h)
// The full node-gyp log goes to build/xs_execve-build.log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = join(root, 'build', 'xs_execve-build.log');
const started = process.hrtime.bigint();

function done(ok, detail) {
  const secs = (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1);
  if (ok) console.log(`xenstored-sim: built native re-exec addon build/Release/xs_execve.node in ${secs}s`);
  else console.warn(`xenstored-sim: native re-exec addon not built (${detail}); live update will use the spawn fallback`);
  process.exit(0);
}

/** Root of a Node headers tree for the running node, or undefined. */
function findNodeDir() {
  const candidates = [process.env.XENSTORED_SIM_NODEDIR, process.env.npm_config_nodedir];
  for (const exe of [process.execPath, realpathSync(process.execPath)]) {
    candidates.push(dirname(dirname(exe))); // /usr/bin/node -> /usr
  }
  candidates.push(process.config?.variables?.node_prefix);
  return candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
}

/** node-gyp's entry script: npm's own copy first, then one installed locally. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  for (const exe of [process.execPath, realpathSync(process.execPath)]) {
    const prefix = dirname(dirname(exe));
    candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((f) => f && existsSync(f));
}

function main() {
  if (process.env.XENSTORED_SIM_NO_NATIVE === '1') return done(false, 'XENSTORED_SIM_NO_NATIVE=1');
  if (process.platform === 'win32') return done(false, 'not supported on Windows');
  const nodeDir = findNodeDir();
  if (!nodeDir) return done(false, 'no Node headers (include/node/node_api.h) next to the node binary; set XENSTORED_SIM_NODEDIR');
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return done(false, 'node-gyp not found');

  const args = [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`];
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
    // Only the flag we pass decides the headers; stop npm's env from pointing
    // node-gyp at a different tree or a download mirror.
    env: { ...process.env, npm_config_nodedir: nodeDir, npm_config_dist_url: undefined },
  });
  try {
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, `$ node ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
  } catch {
    // the log is a convenience only
  }
  if (r.status === 0 && existsSync(join(root, 'build', 'Release', 'xs_execve.node'))) return done(true);
  return done(false, `node-gyp failed${r.error ? `: ${r.error.message}` : ''}, see build/xs_execve-build.log`);
}

try {
  main();
} catch (err) {
  done(false, err instanceof Error ? err.message : String(err));
}
