/**
 * One guest client at a time per domain socket: a client that connects
 * right after the previous one hung up must be served, however quickly it
 * comes back; only a client arriving while another is still connected gets
 * EBUSY. Run against the CLI daemon in its own process, so the daemon's
 * event loop orders the hang-up and the new connection as it would for any
 * client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { startSim, type SimDaemon } from '../helpers/sim-daemon.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';

let sim: SimDaemon | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function introducedGuest(domid: number): Promise<SimDaemon> {
  sim = await startSim();
  const dom0 = await RawClient.connect(sim.socketPath);
  await dom0.call(T.WRITE, `/local/domain/${domid}\0`);
  await dom0.call(T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
  expect((await dom0.call(T.INTRODUCE, `${domid}\x001\x007\0`)).text).toBe('OK\0');
  dom0.close();
  return sim;
}

describe('guest clients on domain/<id>', () => {
  it('a client connecting right after the previous one closed is accepted (thousands of cycles, no EBUSY)', async () => {
    const daemon = await introducedGuest(5);
    const answers = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const guest = await RawClient.connect(daemon.domainSocket(5));
      const reply = await guest.call(T.GET_DOMAIN_PATH, '5\0');
      const key = reply.type === T.ERROR ? reply.text : 'OK';
      answers.set(key, (answers.get(key) ?? 0) + 1);
      guest.close();
    }
    expect(Object.fromEntries(answers)).toEqual({ OK: 3000 });
  }, 120_000);

  it('a second client while the first is connected gets EBUSY and the first keeps working', async () => {
    const daemon = await introducedGuest(5);
    const first = await RawClient.connect(daemon.domainSocket(5));
    expect((await first.call(T.WRITE, 'name\0guest5')).text).toBe('OK\0');
    const second = await RawClient.connect(daemon.domainSocket(5));
    expect(await second.call(T.READ, 'name\0')).toMatchObject({ type: T.ERROR, text: 'EBUSY\0' });
    expect((await first.call(T.READ, 'name\0')).text).toBe('guest5');
    first.close();
    second.close();
  });
});
