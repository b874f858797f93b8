/**
 * The client side of `xenstored-sim`: `shell` and `control`, against the
 * xenstored at $XENSTORED_PATH (else the simulator's default socket) —
 * any xenstored, C's included.
 */
import path from 'node:path';
import { XsClient } from '../client/client.js';
import { defaultRundir } from '../daemon/options.js';
import { controlCommand } from './control-command.js';
import { runShell } from './shell.js';

function socketPath(env: NodeJS.ProcessEnv): string {
  return env.XENSTORED_PATH ?? path.join(defaultRundir(env), 'socket');
}

export async function runClientCommand(name: 'shell' | 'control', args: string[]): Promise<number> {
  const socket = socketPath(process.env);
  try {
    if (name === 'shell') return await runShell(socket, process.env);
    const client = await XsClient.connect(socket);
    try {
      return await controlCommand(client, args, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
    } finally {
      await client.close();
    }
  } catch (e) {
    process.stderr.write(`xenstored-sim ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}
