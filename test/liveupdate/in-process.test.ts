/** In-process live update through the testing kit's handle: what a client sees does not change. */
import { describe, expect, it } from 'vitest';
import { startSim } from '../../src/testing/start-sim.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { connect, onTearDown, tearDownAfterEach } from '../helpers/in-process-daemon.js';

tearDownAfterEach();

describe('in-process live update', () => {
  it('keeps nodes, watches, open transactions and generation counts', async () => {
    const sim = await startSim();
    onTearDown(() => sim.stop());
    const a = await connect(sim.path);
    const b = await connect(sim.path);
    await a.call(T.WRITE, '/a/b\0hello');
    await a.call(T.WRITE, '/a/c\0x');
    expect((await b.call(T.WATCH, '/a\0tok\0')).text).toBe('OK\0');
    expect(await b.event()).toBe('/a\0tok\0');
    const tx = Number((await a.call(T.TRANSACTION_START, '\0')).text.replace('\0', ''));
    await a.call(T.WRITE, '/a/d\0in-tx', tx);
    const before = (await a.call(T.DIRECTORY_PART, '/a\x000\0')).text;

    await sim.liveUpdate();

    expect((await a.call(T.DIRECTORY_PART, '/a\x000\0')).text).toBe(before);
    expect((await a.call(T.READ, '/a/d\0', tx)).text).toBe('in-tx');
    expect((await a.call(T.TRANSACTION_END, 'T\0', tx)).text).toBe('OK\0');
    expect(await b.event()).toBe('/a/d\0tok\0');
    expect((await b.call(T.READ, '/a/d\0')).text).toBe('in-tx');
    expect((await a.call(T.DIRECTORY, '/a\0')).text).toBe('b\0c\0d\0');
    // A new client can still connect to the same listening socket.
    const c = await connect(sim.path);
    expect((await c.call(T.READ, '/a/b\0')).text).toBe('hello');
  });
});

describe('in-process live updates, one after another', () => {
  it('leave no handlers behind on a guest’s socket (no listener leak warning), and the guest keeps working', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    onTearDown(() => process.off('warning', onWarning));
    const sim = await startSim();
    onTearDown(() => sim.stop());
    const guest = await sim.guest(5);
    onTearDown(() => guest.close());
    // Node warns once a socket has more than 10 handlers for one event.
    for (let i = 0; i < 12; i++) {
      await guest.write(`n${i}`, `v${i}`);
      await sim.liveUpdate();
    }
    expect((await guest.read('n11')).toString()).toBe('v11');
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([]);
  });
});
