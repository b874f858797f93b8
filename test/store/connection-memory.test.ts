/**
 * Property: the per-domain memory of connections (watches and transaction
 * copies), kept up to date as they change, equals a recount from scratch
 * (checkStore's) after every step of a random session of a dom0 socket and
 * a guest over real sockets: writes and removals inside and outside
 * transactions, commits (some conflicting) and aborts, WATCH and UNWATCH,
 * connections closed and reopened, RELEASE and re-INTRODUCE of the guest,
 * and in-process live updates, which must leave every figure unchanged.
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { liveUpdateInProcess } from '../../src/liveupdate/in-process.js';
import { checkStore } from '../../src/store/check-store.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import type { WireClient } from '../../src/testing/wire-client.js';
import { connect, onTearDown, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { waitFor } from '../helpers/wait.js';

tearDownAfterEach();

const RUNS = Number(process.env.CONN_MEMORY_RUNS ?? 60);
const GUEST = 7;
const HOME = `/local/domain/${GUEST}`;
const NAMES = ['a', 'b', 'a/c', 'd'];

type Who = 'dom0' | 'guest';
type Op =
  | { kind: 'write' | 'rm'; who: Who; name: number; size: number; inTx: boolean }
  | { kind: 'watch' | 'unwatch'; who: Who; name: number; token: number }
  | { kind: 'start'; who: Who }
  | { kind: 'end'; who: Who; commit: boolean }
  | { kind: 'reconnect'; who: Who }
  | { kind: 'release' }
  | { kind: 'liveUpdate' };

const who = fc.constantFrom<Who>('dom0', 'guest');
const name = fc.nat(NAMES.length - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom('write' as const, 'rm' as const), who, name, size: fc.nat(300), inTx: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('watch' as const, 'unwatch' as const), who, name, token: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), who }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), who, commit: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reconnect' as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('liveUpdate' as const) }) },
);

/** Every domain's connection memory (settled) and total memory. */
function figures(daemon: Daemon): string {
  const { store } = daemon;
  return JSON.stringify([...store.domains.all()].map((d) => [d.domid, store.connectionMemoryOf(d), store.memoryOf(d)]));
}

class Session {
  readonly clients = new Map<Who, WireClient>();
  readonly tx = new Map<Who, number[]>([['dom0', []], ['guest', []]]);
  /** The largest connection memory seen, so the test knows the generator charged something. */
  peak = 0;

  constructor(public daemon: Daemon) {}

  async open(): Promise<void> {
    this.clients.set('dom0', await connect(this.daemon.options.socketPath));
    await this.introduce();
  }

  /** dom0 gives the guest a home it owns and introduces it; the guest connects. */
  private async introduce(): Promise<void> {
    const dom0 = this.clients.get('dom0')!;
    await dom0.call(T.WRITE, `${HOME}\0`);
    await dom0.call(T.SET_PERMS, `${HOME}\0n${GUEST}\0r0\0`);
    expect((await dom0.call(T.INTRODUCE, `${GUEST}\x00123\x009\0`)).payload.toString()).toBe('OK\0');
    await this.connectGuest();
  }

  /** A new guest client; its first request is served once the daemon has let the last one go. */
  private async connectGuest(): Promise<void> {
    const guest = await connect(path.join(this.daemon.options.rundir, 'domain', String(GUEST)));
    this.clients.set('guest', guest);
    this.tx.set('guest', []);
    await guest.call(T.READ, `${HOME}\0`);
  }

  async run(o: Op): Promise<void> {
    switch (o.kind) {
      case 'write':
      case 'rm': {
        const txs = this.tx.get(o.who)!;
        const txId = o.inTx ? (txs.at(-1) ?? 0) : 0;
        const payload = `${HOME}/data/${NAMES[o.name]}\0${o.kind === 'write' ? 'v'.repeat(o.size) : ''}`;
        await this.clients.get(o.who)!.call(o.kind === 'write' ? T.WRITE : T.RM, payload, txId);
        break;
      }
      case 'watch':
      case 'unwatch':
        await this.clients.get(o.who)!.call(o.kind === 'watch' ? T.WATCH : T.UNWATCH, `${HOME}/data/${NAMES[o.name]}\0tok${o.token}\0`);
        break;
      case 'start': {
        const reply = await this.clients.get(o.who)!.call(T.TRANSACTION_START, '\0');
        if (reply.type === T.TRANSACTION_START) this.tx.get(o.who)!.push(Number.parseInt(reply.payload.toString(), 10));
        break;
      }
      case 'end': {
        const id = this.tx.get(o.who)!.shift();
        if (id !== undefined) await this.clients.get(o.who)!.call(T.TRANSACTION_END, o.commit ? 'T\0' : 'F\0', id);
        break;
      }
      case 'reconnect':
        this.clients.get(o.who)!.close();
        if (o.who === 'guest') {
          await this.connectGuest();
        } else {
          const sockets = this.daemon.store.clients.size;
          await waitFor('the daemon to drop the dom0 socket', () => this.daemon.store.clients.size < sockets);
          this.clients.set('dom0', await connect(this.daemon.options.socketPath));
          this.tx.set('dom0', []);
        }
        break;
      case 'release':
        expect((await this.clients.get('dom0')!.call(T.RELEASE, `${GUEST}\0`)).payload.toString()).toBe('OK\0');
        this.clients.get('guest')!.close();
        await this.introduce();
        break;
      case 'liveUpdate': {
        const before = figures(this.daemon);
        const updated = liveUpdateInProcess(this.daemon, () => {});
        onTearDown(() => updated.close());
        this.daemon = updated;
        expect(figures(updated)).toBe(before);
        break;
      }
    }
    checkStore(this.daemon.store);
    for (const domain of this.daemon.store.domains.all()) this.peak = Math.max(this.peak, this.daemon.store.connectionMemoryOf(domain));
  }
}

describe.each(['master', '4.17'])('connection memory kept incrementally (%s)', (version) => {
  it('equals the recount after every step, and a live update keeps it', { timeout: 120_000 }, async () => {
    let peak = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        const session = new Session(await startDaemon(['--compat', version]));
        await session.open();
        for (const o of ops) await session.run(o);
        peak = Math.max(peak, session.peak);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(peak).toBeGreaterThan(300);
  });

  it('a broken figure is named by checkStore', async () => {
    const session = new Session(await startDaemon(['--compat', version]));
    await session.open();
    await session.run({ kind: 'watch', who: 'guest', name: 0, token: 1 });
    session.daemon.store.domains.get(GUEST)!.connectionMemory += 3;
    expect(() => checkStore(session.daemon.store)).toThrow(/domain 7 is charged \d+ bytes for its connections, whose watches and transaction copies take \d+/);
  });
});
