#!/usr/bin/env node
// Second half of `npm run build`: turns each bin that tsc wrote to dist/cli/
// into one self-contained CommonJS file, so that a start loads and compiles
// one file instead of resolving ~70 ES modules (Node 20's ESM loader was most
// of the daemon's start-up). What is imported dynamically (the sandbox page,
// `shell`, `control`) becomes a chunk beside it, loaded only when used.
//
// Why CommonJS: an ES-module entry costs every start Node's ESM loader on top
// of its CommonJS one; dist/cli/package.json says "commonjs" for that folder
// only, so the library's ES modules elsewhere in dist/ are untouched.
// Everything stays at the depth tsc gave it (dist/cli/), so paths built from
// the module's own location (the native addon, the sandbox's assets) still
// resolve; rolldown turns `import.meta.url` into the file's own URL.
//
// rolldown is the bundler vitest already brings (through vite); it is named
// in devDependencies so that this build does not rely on that by accident.
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const cliDir = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'dist', 'cli');
const BINS = ['xenstored-sim', 'xenstore-stream'];

for (const bin of BINS) {
  const entry = join(cliDir, `${bin}.js`);
  // One build per bin: shared code would otherwise go to a chunk both load at start.
  await build({
    input: { [bin]: entry },
    platform: 'node',
    logLevel: 'warn',
    output: {
      dir: cliDir,
      format: 'cjs',
      entryFileNames: '[name].js',
      chunkFileNames: `${bin}-[name].js`,
      // Node keeps a module's source in memory: without comments and
      // indentation it is 35% smaller, and in ASCII one byte a character
      // instead of two (the idle daemon holds 0.5 MB less). Names are kept,
      // so that stack traces still say which function failed.
      comments: false,
      charset: 'ascii',
      minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } },
    },
  });
  chmodSync(entry, 0o755);
  // tsc's source map described the module this file replaced.
  rmSync(`${entry}.map`, { force: true });
}
writeFileSync(join(cliDir, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
