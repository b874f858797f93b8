/**
 * One guest client at a time per domain socket. A client that connects
 * while another holds the domain's ring is parked (not read, not answered)
 * until the holder is seen gone, then served; only a holder still there
 * after the daemon's patience makes the newcomer's request answer EBUSY.
 * Most cases run against the CLI daemon in its own process, so its event
 * loop orders hang-ups and new connections as it would for any client; the
 * unread-output case runs in-process to check that the holder really had
 * output waiting.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { WireClient } from '../../src/testing/wire-client.js';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { waitFor } from '../helpers/wait.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';

tearDownAfterEach();
let sim: SimDaemon | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

/** Gives domain `domid` a home it owns and introduces it, through `dom0`. */
async function introduce(dom0: WireClient, domid: number): Promise<void> {
  await dom0.call(T.WRITE, `/local/domain/${domid}\0`);
  await dom0.call(T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
  expect((await dom0.call(T.INTRODUCE, `${domid}\x001\x007\0`)).text).toBe('OK\0');
}

async function introducedGuest(domid: number): Promise<SimDaemon> {
  sim = await startSim();
  const dom0 = await WireClient.connect(sim.socketPath);
  await introduce(dom0, domid);
  dom0.close();
  return sim;
}

/**
 * Two round trips of the holder, started after a newcomer sent its request:
 * by the second one the daemon has had the newcomer's bytes to read for a
 * whole turn of its event loop, so a daemon that reads them answers them.
 */
async function holderRoundTrips(holder: WireClient, path: string, value: string): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await holder.call(T.READ, `${path}\0`)).text).toBe(value);
}

/** The replies `client` has received so far (watch events aside), as text. */
const answered = (client: WireClient) => client.received.filter((f) => f.type !== T.WATCH_EVENT).map((f) => f.payload.toString('latin1'));

describe('guest clients on domain/<id>', () => {
  it('a client connecting right after the previous one closed is accepted (thousands of cycles, no EBUSY)', async () => {
    const daemon = await introducedGuest(5);
    const answers = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const guest = await WireClient.connect(daemon.domainSocket(5));
      const reply = await guest.call(T.GET_DOMAIN_PATH, '5\0');
      const key = reply.type === T.ERROR ? reply.text : 'OK';
      answers.set(key, (answers.get(key) ?? 0) + 1);
      guest.close();
    }
    expect(Object.fromEntries(answers)).toEqual({ OK: 3000 });
  }, 120_000);

  it('a newcomer while the ring is held waits, unanswered, and is served once the holder hangs up', async () => {
    const daemon = await introducedGuest(5);
    const holder = await WireClient.connect(daemon.domainSocket(5));
    expect((await holder.call(T.WRITE, 'name\0guest5')).text).toBe('OK\0');
    const newcomer = await WireClient.connect(daemon.domainSocket(5));
    const waiting = newcomer.send(T.READ, 'name\0');
    await holderRoundTrips(holder, 'name', 'guest5');
    expect(answered(newcomer)).toEqual([]);
    holder.close();
    expect((await newcomer.take((f) => f.reqId === waiting)).payload.toString('latin1')).toBe('guest5');
    newcomer.close();
  });

  it('newcomers are served in the order they came, each once the one before has gone', async () => {
    const daemon = await introducedGuest(5);
    const holder = await WireClient.connect(daemon.domainSocket(5));
    expect((await holder.call(T.WRITE, 'n\x000')).text).toBe('OK\0');
    const second = await WireClient.connect(daemon.domainSocket(5));
    const secondWrite = second.send(T.WRITE, 'n\x002');
    const third = await WireClient.connect(daemon.domainSocket(5));
    const thirdRead = third.send(T.READ, 'n\0');
    await holderRoundTrips(holder, 'n', '0');
    holder.close();
    expect((await second.take((f) => f.reqId === secondWrite)).payload.toString('latin1')).toBe('OK\0');
    expect(answered(third)).toEqual([]);
    second.close();
    expect((await third.take((f) => f.reqId === thirdRead)).payload.toString('latin1')).toBe('2');
    third.close();
  });

  it('a newcomer whose request comes with the hang-up of a holder that left replies unread is served (20 rounds)', async () => {
    const daemon = await introducedGuest(5);
    const dom0 = await WireClient.connect(daemon.socketPath);
    expect((await dom0.call(T.WRITE, `/local/domain/5/big\0${'v'.repeat(4000)}`)).text).toBe('OK\0');
    const answers: string[] = [];
    for (let round = 0; round < 20; round++) {
      // The holder's replies outgrow what Node reads ahead for a paused
      // socket, so some stay in its kernel buffer: its hang-up then reaches
      // the daemon as ECONNRESET (an error, then 'close'), not end-of-file.
      const holder = await WireClient.connect(daemon.domainSocket(5));
      holder.socket.pause();
      holder.socket.removeAllListeners('data');
      for (let i = 0; i < 16; i++) holder.send(T.READ, 'big\0');
      const newcomer = await WireClient.connect(daemon.domainSocket(5));
      await waitFor('the holder to have replies it did not read', () => holder.socket.readableLength > 0);
      // Keep the daemon busy, so that the hang-up and the newcomer's request
      // are often read in the same turn of its event loop.
      for (let i = 0; i < 500; i++) dom0.send(T.WRITE, '/busy\0x');
      holder.close();
      const reqId = newcomer.send(T.READ, 'big\0');
      const reply = await newcomer.take((f) => f.reqId === reqId);
      answers.push(reply.type === T.ERROR ? reply.payload.toString('latin1') : `${reply.payload.length} bytes`);
      newcomer.close();
    }
    expect(answers).toEqual(Array(20).fill('4000 bytes'));
    dom0.close();
  });

  it('a newcomer that gives up waiting does not hold up the one after it', async () => {
    const daemon = await introducedGuest(5);
    const holder = await WireClient.connect(daemon.domainSocket(5));
    expect((await holder.call(T.WRITE, 'name\0guest5')).text).toBe('OK\0');
    const quitter = await WireClient.connect(daemon.domainSocket(5));
    quitter.send(T.READ, 'name\0');
    const next = await WireClient.connect(daemon.domainSocket(5));
    const waiting = next.send(T.READ, 'name\0');
    await holderRoundTrips(holder, 'name', 'guest5');
    quitter.close();
    holder.close();
    expect((await next.take((f) => f.reqId === waiting)).payload.toString('latin1')).toBe('guest5');
    next.close();
  });

  it('a second client while the first stays connected gets EBUSY after waiting, and the first keeps working', async () => {
    const daemon = await introducedGuest(5);
    const first = await WireClient.connect(daemon.domainSocket(5));
    expect((await first.call(T.WRITE, 'name\0guest5')).text).toBe('OK\0');
    const second = await WireClient.connect(daemon.domainSocket(5));
    const refused = second.send(T.READ, 'name\0');
    // While the second waits, the first is served and the second is not answered.
    await holderRoundTrips(first, 'name', 'guest5');
    expect(answered(second)).toEqual([]);
    const refusal = await second.take((f) => f.reqId === refused);
    expect({ type: refusal.type, text: refusal.payload.toString('latin1') }).toEqual({ type: T.ERROR, text: 'EBUSY\0' });
    await waitFor('the refused client to be disconnected', () => second.closed);
    expect((await first.call(T.READ, 'name\0')).text).toBe('guest5');
    first.close();
  });

  it('a newcomer parked while the domain is released is hung up on', async () => {
    const daemon = await introducedGuest(5);
    const dom0 = await WireClient.connect(daemon.socketPath);
    const holder = await WireClient.connect(daemon.domainSocket(5));
    expect((await holder.call(T.WRITE, 'name\0guest5')).text).toBe('OK\0');
    const newcomer = await WireClient.connect(daemon.domainSocket(5));
    newcomer.send(T.READ, 'name\0');
    await holderRoundTrips(holder, 'name', 'guest5');
    expect((await dom0.call(T.RELEASE, '5\0')).text).toBe('OK\0');
    await waitFor('the parked newcomer to be disconnected', () => newcomer.closed);
    expect(answered(newcomer)).toEqual([]);
    dom0.close();
    holder.close();
  });
});

describe('a holder that hangs up with output it never read', () => {
  /** The daemon's socket to domain `domid`'s client. */
  function guestSocket(daemon: Daemon, domid: number): net.Socket | undefined {
    const conn = [...daemon.connections.values()].find((c) => c.client.domid === domid);
    return conn && daemon.socketOf(conn);
  }

  it('is seen gone at once: the next client is served, not refused', async () => {
    const daemon = await startDaemon();
    const dom0 = await connect(daemon.options.socketPath);
    await introduce(dom0, 5);
    const big = 'v'.repeat(4000);
    expect((await dom0.call(T.WRITE, `/local/domain/5/big\0${big}`)).text).toBe('OK\0');
    // A holder that pipelines reads of a 4 kB node and never reads a reply.
    const holder = await WireClient.connect(`${daemon.domainDir}/5`, { paused: true });
    for (let i = 0; i < 400; i++) holder.send(T.READ, 'big\0');
    // Output waits in the daemon because the client's socket buffer is full.
    let pending = 0;
    await waitFor('the daemon to hold output the holder has not read', async () => {
      const before = guestSocket(daemon, 5)?.writableLength ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 50));
      pending = guestSocket(daemon, 5)?.writableLength ?? 0;
      return pending > 0 && pending === before;
    });
    expect(pending).toBeGreaterThan(0);
    holder.close();
    const next = await connect(`${daemon.domainDir}/5`);
    expect(await next.call(T.READ, 'big\0')).toMatchObject({ type: T.READ, text: big });
  });
});
