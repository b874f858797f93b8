/**
 * `xenstored-sim control <command> [<arg>...]`: what Xen's xenstore-control
 * does, against any xenstored: send one CONTROL request and print its reply;
 * `live-update [-c CMDLINE] [-t SECONDS] [-F] BINARY` runs the daemon-side
 * sequence (-f, -c, then -s until it is not BUSY). Exit status as theirs:
 * 2 bad usage, 3 the daemon refused.
 */
import os from 'node:os';
import { isXsError } from '../client/errors.js';
import type { XsClient } from '../client/client.js';
import { atoi } from '../store/numbers.js';

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const replyText = (reply: Buffer): string => reply.toString('latin1').replace(/\0[\s\S]*$/, '');
const errnoOf = (code: string): number => (os.constants.errno as Record<string, number>)[code] ?? 0;

/** Sends a live-update step; undefined when it answered OK, else the text to print. */
async function step(client: XsClient, args: string[]): Promise<string | undefined> {
  try {
    const text = replyText(await client.control('live-update', ...args));
    return text === 'OK' ? undefined : text;
  } catch (e) {
    if (isXsError(e)) return e.code;
    throw e;
  }
}

async function liveUpdate(client: XsClient, args: string[], io: Output, pause: (ms: number) => Promise<void>): Promise<number> {
  let binary: string | undefined;
  let cmdline: string | undefined;
  let timeout = 60;
  let force = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '-t') {
      const value = args[++i];
      if (value === undefined) {
        io.err(arg === '-c' ? 'Missing command line value\n' : 'Missing timeout value\n');
        return 2;
      }
      if (arg === '-c') cmdline = value;
      else timeout = atoi(value);
    } else if (arg === '-F') force = true;
    else binary = arg;
  }
  if (binary === undefined) {
    io.err('Missing binary specification\n');
    return 2;
  }
  const refused = await step(client, ['-f', binary]);
  if (refused !== undefined) {
    io.err(`Setting update binary failed:\n${refused}\n`);
    return 3;
  }
  let failure: string | undefined;
  if (cmdline !== undefined) {
    const text = await step(client, ['-c', cmdline]);
    if (text !== undefined) failure = `Setting update binary failed:\n${text}\n`;
  }
  if (failure === undefined) {
    const start = ['-s', '-t', String(timeout), ...(force ? ['-F'] : [])];
    const began = Date.now();
    let text = await step(client, start);
    while (text === 'BUSY' && Date.now() - began < timeout * 1000) {
      await pause(1000);
      text = await step(client, start);
    }
    if (text !== undefined) failure = `Starting live update failed:\n${text}\n`;
  }
  if (failure === undefined) return 0;
  io.err(failure);
  await step(client, ['-a']);
  return 3;
}

export async function controlCommand(client: XsClient, args: string[], io: Output, pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) {
    io.err('Usage:\nxenstored-sim control <command> [<arg>...]\n');
    return 2;
  }
  if (command === 'live-update') return liveUpdate(client, rest, io, pause);
  try {
    const text = replyText(await client.control(command, ...rest));
    if (text.length > 0) io.out(`${text}\n`);
    return 0;
  } catch (e) {
    if (!isXsError(e)) throw e;
    if (e.code !== 'EINVAL') {
      io.err(`Error ${errnoOf(e.code)} when trying to execute command.\n`);
      return 3;
    }
    const help = await client.control('help').then(replyText, () => undefined);
    io.err(help === undefined ? 'Error when executing command.\n' : `Command not supported. Valid commands are:\n${help}\n`);
    return 3;
  }
}
