/**
 * The C benchmark client (bench/xsclient.c): built with gcc against
 * libxenstore on first use, then run once per measurement against whichever
 * daemon's socket is given. Its result lines are "key=value ..." pairs.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Result = Record<string, number>;

function parseLine(line: string): Result {
  const out: Result = {};
  for (const pair of line.trim().split(/\s+/)) {
    const [key, value] = pair.split('=');
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

/** Compiles bench/<name>.c unless an up-to-date build exists; returns the binary. */
export function buildBenchProgram(repo: string, name: string, libs: string[] = []): string {
  const source = path.join(repo, 'bench', `${name}.c`);
  const binary = path.join(os.tmpdir(), 'xenstored-sim-bench', name);
  const stale = !fs.existsSync(binary) || fs.statSync(binary).mtimeMs < fs.statSync(source).mtimeMs;
  if (stale) {
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const gcc = spawnSync('gcc', ['-O2', '-Wall', '-o', binary, source, ...libs], { encoding: 'utf8' });
    if (gcc.status !== 0) {
      throw new Error(`cannot build ${source} (needs gcc${libs.includes('-lxenstore') ? ' and libxen-dev' : ''}): ${gcc.stderr || gcc.error?.message}`);
    }
  }
  return binary;
}

/** Drives bench/xsclient.c, a libxenstore program; not the Node client library. */
export class LibxenstoreDriver {
  private constructor(readonly binary: string) {}

  /** Builds the client unless an up-to-date build exists; throws with gcc's output on failure. */
  static build(repo: string): LibxenstoreDriver {
    return new LibxenstoreDriver(buildBenchProgram(repo, 'xsclient', ['-lxenstore', '-lpthread']));
  }

  /** Runs one mode to completion against `socket`; every result line, in order. */
  run(socket: string, args: (string | number)[], timeoutMs = 600_000): Result[] {
    const out = execFileSync(this.binary, args.map(String), {
      env: { ...process.env, XENSTORED_PATH: socket },
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out.split('\n').filter((l) => l.includes('=')).map(parseLine);
  }

  /** Like run, for modes with a single result line. */
  one(socket: string, args: (string | number)[], timeoutMs?: number): Result {
    const results = this.run(socket, args, timeoutMs);
    if (results.length !== 1) throw new Error(`xsclient ${args.join(' ')}: expected one result, got ${results.length}`);
    return results[0]!;
  }

  /** Opens `count` idle connections (one watch each) and keeps them until released. */
  async hold(socket: string, count: number): Promise<HeldConnections> {
    const child = spawn(this.binary, ['hold', String(count)], {
      env: { ...process.env, XENSTORED_PATH: socket },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`xsclient hold ${count} exited with ${code}`)));
    });
    return new HeldConnections(child, () => output);
  }
}

export class HeldConnections {
  constructor(private readonly child: ChildProcess, private readonly output: () => string) {}

  /** Checks every connection still answers, closes them; returns how many did. */
  async release(): Promise<number> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    await exited;
    const alive = /alive=(\d+)/.exec(this.output());
    return alive ? Number(alive[1]) : 0;
  }
}
