/**
 * `xenstored-sim shell`: an interactive prompt against any xenstored
 * (XENSTORED_PATH). The commands live in `Shell.execute`, which returns
 * what to print, so they can be tested without a terminal; `runShell` adds
 * readline (history, tab completion of paths) around them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { XsClient } from '../client/client.js';
import { isXsError } from '../client/errors.js';
import type { XsNodeOps } from '../client/node-ops.js';
import type { Transaction } from '../client/transaction.js';
import { controlCommand } from './control-command.js';

const HELP = `commands (paths are relative to the current directory unless they start with / or @):
  ls [PATH]               children with their values
  cd PATH | pwd           change / show the current directory
  read PATH               a node's value
  write PATH VALUE...     set a value (the words joined by spaces)
  mkdir PATH | rm PATH    create / remove a node (rm removes the subtree)
  perms PATH [PERM...]    show or set the permission list (e.g. perms /a n5 r0)
  watch PATH [TOKEN]      report changes below PATH as they happen; unwatch PATH [TOKEN]
  tx [start|commit|abort] work in a transaction (the prompt shows it)
  as DOMID                act as that guest domain, through its own connection (0: dom0)
  control COMMAND...      a CONTROL command, as xenstore-control sends it
  help | exit
`;

/** Splits a line into words; "double quotes" keep spaces. */
export function words(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!));
}

export class Shell {
  cwd = '/';
  domid = 0;
  private tx: Transaction | undefined;

  private constructor(private client: XsClient, private readonly socketPath: string, private readonly notify: (text: string) => void) {
    this.listen();
  }

  static async open(socketPath: string, notify: (text: string) => void): Promise<Shell> {
    return new Shell(await XsClient.connect(socketPath), socketPath, notify);
  }

  private listen(): void {
    this.client.on('watch', (p, token) => this.notify(`watch ${token}: ${p}\n`));
    this.client.on('close', (error) => {
      if (error) this.notify(`connection lost: ${error.message}\n`);
    });
  }

  get prompt(): string {
    return `${this.domid === 0 ? '' : `dom${this.domid} `}${this.cwd}${this.tx ? ` [tx ${this.tx.txId}]` : ''}> `;
  }

  /** An absolute (or @special) path for what the user typed. */
  resolve(p: string | undefined): string {
    if (p === undefined || p === '') return this.cwd;
    if (p.startsWith('@')) return p;
    return path.posix.resolve(this.cwd, p);
  }

  private get ops(): XsNodeOps {
    return this.tx ?? this.client;
  }

  /** Runs one command line; resolves to what it prints. */
  async execute(line: string): Promise<string> {
    const [command, ...args] = words(line);
    if (command === undefined) return '';
    try {
      return await this.run(command, args);
    } catch (e) {
      if (isXsError(e)) return `${e.code}\n`;
      return `error: ${(e as Error).message}\n`;
    }
  }

  private async run(command: string, args: string[]): Promise<string> {
    switch (command) {
      case 'help': return HELP;
      case 'pwd': return `${this.cwd}\n`;
      case 'ls': return this.list(this.resolve(args[0]));
      case 'cd': {
        const target = this.resolve(args[0] ?? '/');
        await this.ops.directory(target);
        this.cwd = target;
        return '';
      }
      case 'read': return `${(await this.ops.read(this.resolve(args[0]))).toString('latin1')}\n`;
      case 'write': {
        if (args.length < 1) return 'usage: write PATH VALUE...\n';
        await this.ops.write(this.resolve(args[0]), args.slice(1).join(' '));
        return '';
      }
      case 'mkdir': await this.ops.mkdir(this.resolve(args[0])); return '';
      case 'rm': await this.ops.rm(this.resolve(args[0])); return '';
      case 'perms': {
        const target = this.resolve(args[0]);
        if (args.length > 1) await this.ops.setPerms(target, args.slice(1));
        return `${(await this.ops.getPerms(target)).join(' ')}\n`;
      }
      case 'watch': await this.client.watch(this.resolve(args[0]), args[1] ?? 'shell'); return '';
      case 'unwatch': await this.client.unwatch(this.resolve(args[0]), args[1] ?? 'shell'); return '';
      case 'tx': return this.transaction(args[0] ?? 'start');
      case 'as': return this.actAs(args[0]);
      case 'control': {
        let text = '';
        const status = await controlCommand(this.client, args, { out: (t) => (text += t), err: (t) => (text += t) });
        return status === 0 ? text : `${text}(exit status ${status})\n`;
      }
      default: return `unknown command ${command}; try help\n`;
    }
  }

  private async list(dir: string): Promise<string> {
    const names = await this.ops.directory(dir);
    const rows = await Promise.all(names.map(async (name) => {
      const child = path.posix.join(dir, name);
      const value = await this.ops.read(child).then((v) => v.toString('latin1'), (e: unknown) => (isXsError(e) ? `(${e.code})` : ''));
      return `${name} = "${value}"\n`;
    }));
    return rows.join('');
  }

  private async transaction(verb: string): Promise<string> {
    if (verb === 'start') {
      if (this.tx) return `already in transaction ${this.tx.txId}\n`;
      this.tx = await this.client.startTransaction();
      return `transaction ${this.tx.txId} started\n`;
    }
    if (verb !== 'commit' && verb !== 'abort') return 'usage: tx [start|commit|abort]\n';
    const tx = this.tx;
    if (!tx) return 'no transaction open\n';
    this.tx = undefined;
    await (verb === 'commit' ? tx.commit() : tx.abort());
    return `transaction ${tx.txId} ${verb === 'commit' ? 'committed' : 'aborted'}\n`;
  }

  /** Switches to another domain's connection; watches and a transaction stay behind. */
  private async actAs(text: string | undefined): Promise<string> {
    const domid = Number(text);
    if (!Number.isInteger(domid) || domid < 0) return 'usage: as DOMID\n';
    const socket = domid === 0 ? this.socketPath : path.join(path.dirname(this.socketPath), 'domain', String(domid));
    const client = await XsClient.connect(socket, { retryMs: 0 });
    await this.client.close();
    this.client = client;
    this.tx = undefined;
    this.domid = domid;
    this.cwd = domid === 0 ? '/' : `/local/domain/${domid}`;
    this.listen();
    return `acting as domain ${domid}\n`;
  }

  /** Paths that complete the last word of `line`. */
  async complete(line: string): Promise<[string[], string]> {
    const word = line.endsWith(' ') ? '' : (line.split(/\s+/).pop() ?? '');
    const slash = word.lastIndexOf('/');
    const dirPart = slash < 0 ? '' : word.slice(0, slash + 1);
    const dir = this.resolve(dirPart || undefined);
    const names = await this.ops.directory(dir).catch(() => [] as string[]);
    const prefix = word.slice(slash + 1);
    return [names.filter((n) => n.startsWith(prefix)).map((n) => `${dirPart}${n}`), word];
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** The history file: $XENSTORED_SIM_HISTORY, else ~/.xenstored_sim_history. */
function historyFile(env: NodeJS.ProcessEnv): string {
  return env.XENSTORED_SIM_HISTORY ?? path.join(os.homedir(), '.xenstored_sim_history');
}

export async function runShell(socketPath: string, env: NodeJS.ProcessEnv): Promise<number> {
  let rl: readline.Interface | undefined;
  const shell = await Shell.open(socketPath, (text) => {
    process.stdout.write(text);
    rl?.prompt(true);
  });
  const file = historyFile(env);
  const history = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).reverse() : [];
  rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    history,
    historySize: 1000,
    completer: (line: string, done: (err: Error | null, result: [string[], string]) => void) => {
      shell.complete(line).then((r) => done(null, r), () => done(null, [[], line]));
    },
  });
  rl.on('history', (lines: string[]) => {
    try {
      fs.writeFileSync(file, `${[...lines].reverse().join('\n')}\n`);
    } catch {
      // A read-only home only costs the history.
    }
  });
  rl.setPrompt(shell.prompt);
  rl.prompt();
  for await (const line of rl) {
    const command = line.trim();
    if (command === 'exit' || command === 'quit') break;
    process.stdout.write(await shell.execute(command));
    rl.setPrompt(shell.prompt);
    rl.prompt();
  }
  rl.close();
  await shell.close();
  return 0;
}
