/**
 * Live update as a model-based property (fast-check's `fc.commands` with
 * `asyncModelRun`). The model is a twin daemon that never updates: every
 * command goes to both, and their replies and watch events must be the
 * same; a LiveUpdateCommand updates only the real one and checks that its
 * snapshot is the same before and after, and the same as the twin's. So an
 * open transaction must commit or conflict exactly as without the update,
 * and every connection must still answer. Users add commands of their own
 * by implementing `SimCommand`.
 */
import fc from 'fast-check';
import type { XsClient } from '../client/client.js';
import { MessageType as T } from '../wire/vocabulary.js';
import { operations, transactionBlocks, type OperationOptions } from './arbitraries.js';
import { diffSnapshots } from './diff.js';
import { describeOperation, payloadBytes, replyText, transactionId, type Operation } from './operations.js';
import type { SimHandle } from './sim-handle.js';
import type { Snapshot } from './snapshot.js';

export interface WorldOptions {
  /** How many dom0 socket connections (default 2); they come first. */
  dom0?: number;
  /** Guest domains, one connection each, after the dom0 ones (default [1, 2]). */
  guests?: number[];
}

/** A daemon with its connections, as the commands see it. */
export interface SimWorld {
  readonly handle: SimHandle;
  readonly clients: readonly XsClient[];
  /** The watch events each connection received so far, as `path|token|`. */
  readonly events: string[][];
  /** Each connection's open transaction ids, ascending. */
  readonly open: number[][];
}

export type SimCommand = fc.AsyncCommand<SimWorld, SimWorld>;

export async function openWorld(handle: SimHandle, options: WorldOptions = {}): Promise<SimWorld> {
  const clients: XsClient[] = [];
  for (let i = 0; i < (options.dom0 ?? 2); i++) clients.push(await handle.client());
  for (const domid of options.guests ?? [1, 2]) clients.push(await handle.guest(domid));
  const events = clients.map((client) => {
    const received: string[] = [];
    client.on('watch', (path, token) => received.push(`${path}|${token}|`));
    return received;
  });
  return { handle, clients, events, open: clients.map(() => []) };
}

/** Sends one operation and returns its reply text, keeping track of open transactions. */
export async function sendOperation(world: SimWorld, op: Operation): Promise<string> {
  const client = world.clients[op.conn];
  if (!client) throw new Error(`operation on connection ${op.conn}: the world has ${world.clients.length}`);
  const open = world.open[op.conn]!;
  const txId = transactionId(op, open);
  const text = replyText(await client.request(op.type, payloadBytes(op.payload), txId));
  if (op.type === T.TRANSACTION_START && text.startsWith('=')) open.push(Number(text.slice(1).replace(/\|$/, '')));
  if (op.type === T.TRANSACTION_END && (text === 'OK' || text === 'EAGAIN')) open.splice(open.indexOf(txId), 1);
  if (op.type === T.RESET_WATCHES && text === 'OK') open.length = 0;
  return text;
}

/** Once a request on every connection is answered, every event caused before is in (events precede later replies). */
async function settle(world: SimWorld): Promise<void> {
  await Promise.all(world.clients.map((c) => c.request(T.GET_DOMAIN_PATH, payloadBytes('0|'))));
}

async function compareEvents(twin: SimWorld, real: SimWorld): Promise<void> {
  await Promise.all([settle(twin), settle(real)]);
  twin.events.forEach((expected, i) => {
    const got = real.events[i]!;
    if (expected.join(' ') !== got.join(' ')) {
      throw new Error(`connection ${i} got watch events [${got.join(' ')}] with live update, [${expected.join(' ')}] without`);
    }
  });
}

function assertSame(what: string, a: Snapshot, b: Snapshot): void {
  const lines = diffSnapshots(a, b);
  if (lines.length > 0) throw new Error(`${what}:\n  ${lines.join('\n  ')}`);
}

/** Requests, in order, on the twin and the real daemon: the replies must be equal. */
export class RequestCommand implements SimCommand {
  constructor(readonly ops: readonly Operation[]) {}
  check(): boolean {
    return true;
  }
  async run(twin: SimWorld, real: SimWorld): Promise<void> {
    for (const op of this.ops) {
      const txId = transactionId(op, real.open[op.conn] ?? []);
      const [expected, got] = await Promise.all([sendOperation(twin, op), sendOperation(real, op)]);
      if (expected !== got) throw new Error(`${describeOperation(op, txId)}: reply ${got} with live update, ${expected} without`);
    }
  }
  toString(): string {
    return this.ops.map((op) => describeOperation(op)).join(', ');
  }
}

/** A live update of the real daemon: nothing observable may change. */
export class LiveUpdateCommand implements SimCommand {
  check(): boolean {
    return true;
  }
  async run(twin: SimWorld, real: SimWorld): Promise<void> {
    await compareEvents(twin, real);
    const before = await real.handle.snapshot({ generations: true });
    await real.handle.liveUpdate();
    const after = await real.handle.snapshot({ generations: true });
    assertSame('the live update changed the state', before, after);
    assertSame('the state differs from the daemon without live update', await twin.handle.snapshot({ generations: true }), after);
  }
  toString(): string {
    return 'liveUpdate';
  }
}

export interface CommandOptions extends WorldOptions {
  /** At most this many commands (default 30). */
  maxCommands?: number;
  /** More command arbitraries, e.g. a user's own requests. */
  extra?: fc.Arbitrary<SimCommand>[];
}

function operationOptions(options: WorldOptions): OperationOptions {
  const guests = options.guests ?? [1, 2];
  return { connections: (options.dom0 ?? 2) + guests.length, guests, streamable: true };
}

/** Random commands: single requests, transaction sessions (some left open), live updates, and `extra`. */
export function liveUpdateCommands(options: CommandOptions = {}): fc.Arbitrary<Iterable<SimCommand>> {
  const ops = operationOptions(options);
  return fc.commands(
    [
      operations(ops).map((op) => new RequestCommand([op])),
      transactionBlocks({ ...ops, leaveOpen: true }).map((block) => new RequestCommand(block)),
      fc.constant(new LiveUpdateCommand()),
      ...(options.extra ?? []),
    ],
    { maxCommands: options.maxCommands ?? 30 },
  );
}

/**
 * The one-call property: starts two daemons with `start`, runs `commands`
 * on both (live updates on one), updates once more, commits every open
 * transaction on both, and checks the replies, events and final states are
 * the same. Throws with a readable difference otherwise; stops both daemons.
 */
export async function assertLiveUpdatePreserves(start: () => Promise<SimHandle>, commands: Iterable<SimCommand>, options: WorldOptions = {}): Promise<void> {
  const handles = await Promise.all([start(), start()]);
  try {
    const [twin, real] = await Promise.all(handles.map((h) => openWorld(h, options)));
    await fc.asyncModelRun(() => ({ model: twin!, real: real! }), commands);
    await new LiveUpdateCommand().run(twin!, real!);
    const commits = real!.open.flatMap((ids, conn) => ids.map((): Operation => ({ conn, tx: 0, type: T.TRANSACTION_END, payload: 'T|' })));
    await new RequestCommand(commits).run(twin!, real!);
    await compareEvents(twin!, real!);
    assertSame('after the last commits the state differs from the daemon without live update', await twin!.handle.snapshot({ generations: true }), await real!.handle.snapshot({ generations: true }));
  } finally {
    await Promise.all(handles.map((h) => h.stop()));
  }
}

/** fc.asyncProperty over liveUpdateCommands and assertLiveUpdatePreserves, for `fc.assert`. */
export function liveUpdateProperty(start: () => Promise<SimHandle>, options: CommandOptions = {}): fc.IAsyncProperty<[Iterable<SimCommand>]> {
  return fc.asyncProperty(liveUpdateCommands(options), (commands) => assertLiveUpdatePreserves(start, commands, options));
}
