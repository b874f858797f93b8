/**
 * One guest attack of issue 12, run in a process of its own so that it
 * does not share an event loop with the dom0 client being timed:
 * `node guest-attacker.js <attack> <guest socket>...`. Each socket is an
 * introduced guest's ring (the simulator's domain socket, or the kit's
 * guest-ring-proxy.py in front of C). Prints `ready` once set up, then
 * attacks until killed.
 */
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WireClient, type Frame } from '../testing/wire-client.js';
import { MessageType as T } from '../wire/vocabulary.js';

export const ATTACKS = {
  flood: 'pipelined writes under 127 watches, never read',
  commit980: 'transaction rewriting 980 nodes under 127 watches, repeated',
  setperms: 'SET_PERMS with a new permission list each time',
  watches: 'writes under 127 watches, every event read',
  connections: '32 guests writing at once',
  noread: 'pipelined READs of a 2000-byte value, never read',
} as const;

export type Attack = keyof typeof ATTACKS;

/** Guests the `connections` attack uses; every other attack uses one. */
export const guestCount = (attack: Attack): number => (attack === 'connections' ? 32 : 1);

const WATCHES = 127;
const COMMIT_NODES = 980;

/**
 * A guest ring that counts the replies it reads (they come in request
 * order) and throws its watch events away, so a long attack keeps nothing.
 */
class Guest {
  private sent = 0;
  private answered = 0;
  private lastText = '';
  private waiter: (() => void) | undefined;
  private client!: WireClient;

  static async connect(socket: string): Promise<Guest> {
    const guest = new Guest();
    guest.client = await WireClient.connect(socket, { onFrame: (f) => guest.onFrame(f) });
    return guest;
  }

  private onFrame(frame: Frame): void {
    if (frame.type === T.WATCH_EVENT) return;
    this.answered++;
    this.lastText = frame.payload.toString('latin1');
    this.waiter?.();
  }

  /** Sends a request without waiting; `window` bounds how many are unanswered. */
  async send(type: number, payload: string, txId = 0, window = 1): Promise<void> {
    this.client.send(type, payload, txId);
    this.sent++;
    await this.answeredUpTo(this.sent - window + 1);
  }

  /** Sends a request and returns its reply's text. */
  async call(type: number, payload: string, txId = 0): Promise<string> {
    await this.send(type, payload, txId);
    return this.lastText;
  }

  async settle(): Promise<void> {
    await this.answeredUpTo(this.sent);
  }

  private async answeredUpTo(count: number): Promise<void> {
    while (this.answered < count) {
      if (this.client.closed) throw new Error('the daemon closed the guest connection');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Stops reading: from now on only raw requests go out. */
  stopReading(): void {
    this.client.socket.pause();
  }

  /** Writes raw requests, waiting while the socket buffer is full. */
  async sendRaw(bytes: Buffer): Promise<void> {
    if (!this.client.socket.write(bytes)) await once(this.client.socket, 'drain');
  }

  frame(type: number, payload: string): Buffer {
    return this.client.frame(type, payload).bytes;
  }
}

async function watch127(guest: Guest): Promise<void> {
  for (let i = 0; i < WATCHES; i++) await guest.send(T.WATCH, `data\0t${i}\0`);
  await guest.settle();
}

async function flood(guest: Guest): Promise<void> {
  await watch127(guest);
  guest.stopReading();
  process.stdout.write('ready\n');
  for (let batch = 0; ; batch++) {
    const frames = Array.from({ length: 100 }, (_, i) => guest.frame(T.WRITE, `data/b${batch % 50}/k${i}\0v`));
    await guest.sendRaw(Buffer.concat(frames));
  }
}

async function commit980(guest: Guest): Promise<void> {
  const node = (i: number) => `data/b${i % 10}/n${i}`;
  for (let i = 0; i < COMMIT_NODES; i++) await guest.send(T.WRITE, `${node(i)}\0old`, 0, 32);
  await watch127(guest);
  process.stdout.write('ready\n');
  for (let round = 0; ; round++) {
    const tx = Number((await guest.call(T.TRANSACTION_START, '\0')).replace('\0', ''));
    for (let i = 0; i < COMMIT_NODES; i++) await guest.send(T.WRITE, `${node(i)}\0r${round}`, tx, 64);
    await guest.call(T.TRANSACTION_END, 'T\0', tx);
  }
}

async function setperms(guest: Guest, domid: number): Promise<void> {
  await guest.call(T.WRITE, 'data/p\0v');
  process.stdout.write('ready\n');
  for (let a = 0; ; a = (a + 1) % 30_000) {
    const first = 100 + a;
    await guest.send(T.SET_PERMS, `data/p\0n${domid}\0r${first}\0r${first + 1}\0r${first + 2}\0`, 0, 32);
  }
}

async function watches(guest: Guest): Promise<void> {
  await watch127(guest);
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) await guest.send(T.WRITE, `data/b${i % 50}/k${i % 1000}\0v`, 0, 32);
}

async function writer(guest: Guest): Promise<void> {
  for (let i = 0; ; i++) await guest.send(T.WRITE, `data/k${i % 100}\0v`, 0, 4);
}

async function noread(guest: Guest): Promise<void> {
  await guest.call(T.WRITE, `big\0${'x'.repeat(2000)}`);
  guest.stopReading();
  process.stdout.write('ready\n');
  const reads = Buffer.concat(Array.from({ length: 100 }, () => guest.frame(T.READ, 'big\0')));
  for (;;) await guest.sendRaw(reads);
}

/** The domid a guest socket belongs to (`<rundir>/domain/<domid>`). */
const domidOf = (socket: string): number => Number(socket.slice(socket.lastIndexOf('/') + 1));

async function main(attack: Attack, sockets: string[]): Promise<void> {
  const guests = await Promise.all(sockets.map((s) => Guest.connect(s)));
  const [guest] = guests;
  switch (attack) {
    case 'flood': return flood(guest!);
    case 'commit980': return commit980(guest!);
    case 'setperms': return setperms(guest!, domidOf(sockets[0]!));
    case 'watches': return watches(guest!);
    case 'noread': return noread(guest!);
    case 'connections':
      process.stdout.write('ready\n');
      await Promise.all(guests.map(writer));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [attack, ...sockets] = process.argv.slice(2);
  if (!attack || !(attack in ATTACKS) || sockets.length === 0) {
    process.stderr.write(`usage: guest-attacker.js <${Object.keys(ATTACKS).join('|')}> <guest socket>...\n`);
    process.exit(2);
  }
  main(attack as Attack, sockets).catch((e: Error) => {
    process.stderr.write(`guest-attacker ${attack}: ${e.message}\n`);
    process.exit(1);
  });
}
