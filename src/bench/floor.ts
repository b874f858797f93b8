/**
 * The round-trip floor: one client's sequential requests against two bare
 * echo servers, bench/echo.c and src/bench/echo-server.ts (the daemon's own
 * Node socket path), with one client and with the 16 of the mixed measure.
 * No daemon can answer faster than its echo server, so these rows bound the
 * ratios from above.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Daemon, Results } from './report.js';
import { buildBenchProgram, type LibxenstoreDriver } from './xsclient.js';

/** Reply payload sizes: a short value, and a DIRECTORY_PART-sized list. */
export const FLOOR_SIZES = [17, 3906] as const;

function startEcho(command: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before it was ready`)));
  });
}

export async function roundTripFloor(repo: string, client: LibxenstoreDriver, results: Results, runs: number): Promise<void> {
  const cEcho = buildBenchProgram(repo, 'echo');
  const nodeEcho = path.join(path.dirname(fileURLToPath(import.meta.url)), 'echo-server.js');
  const requests = 20_000;
  for (const size of FLOOR_SIZES) {
    const sockets: Record<Daemon, string> = {
      sim: path.join(os.tmpdir(), 'xenstored-sim-bench', `echo-node-${size}.sock`),
      C: path.join(os.tmpdir(), 'xenstored-sim-bench', `echo-c-${size}.sock`),
    };
    const servers = [
      await startEcho(process.execPath, [nodeEcho, sockets.sim, String(size)]),
      await startEcho(cEcho, [sockets.C, String(size)]),
    ];
    try {
      client.one(sockets.sim, ['read', requests, '/warm']);
      for (let run = 0; run < runs; run++) {
        const order: Daemon[] = run % 2 === 0 ? ['sim', 'C'] : ['C', 'sim'];
        for (const name of order) {
          results.add(`floor${size}`, name, requests / client.one(sockets[name], ['read', requests, '/x']).secs!);
          if (size !== FLOOR_SIZES[0]) continue;
          const mixed = client.one(sockets[name], ['mixed', 16, 2000, '/x']);
          results.add('floorMixed', name, mixed.ops! / mixed.secs!);
        }
      }
    } finally {
      for (const s of servers) s.kill();
    }
  }
}
