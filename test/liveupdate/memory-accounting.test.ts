/**
 * Memory accounting across a live update and a per-domain migration: the
 * stream does not carry the figures (C's does not either); the restoring
 * daemon recounts them from the nodes, and they must come back unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { liveUpdateInProcess } from '../../src/liveupdate/in-process.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { connect, onTearDown, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';

tearDownAfterEach();

const text = async (p: Promise<{ text: string }>) => (await p).text;

/** Every domain's memory as `quota <domid>` reports it. */
function figures(daemon: Daemon): Map<number, number> {
  const { store } = daemon;
  return new Map([...store.domains.all()].map((d) => [d.domid, store.memoryOf(d)]));
}

/** dom0 gives guest 7 a home it owns and introduces it; the guest writes, sets permissions and watches. */
async function busyGuest(daemon: Daemon): Promise<void> {
  const dom0 = await connect(daemon.options.socketPath);
  await dom0.call(T.WRITE, '/local/domain/7\0');
  await dom0.call(T.SET_PERMS, '/local/domain/7\0n7\0r0\0');
  expect(await text(dom0.call(T.INTRODUCE, '7\x00123\x009\0'))).toBe('OK\0');
  await dom0.call(T.WRITE, '/tool/extra\0dom0 value');
  expect(await text(dom0.call(T.WATCH, '/tool\0dom0-token\0'))).toBe('OK\0');
  const guest = await connect(path.join(daemon.options.rundir, 'domain', '7'));
  expect(await text(guest.call(T.WRITE, `data/x\0${'v'.repeat(500)}`))).toBe('OK\0');
  expect(await text(guest.call(T.SET_PERMS, 'data/x\0n7\0r3\0b5\0'))).toBe('OK\0');
  expect(await text(guest.call(T.WATCH, 'data\0a-longer-token\0'))).toBe('OK\0');
}

describe('memory accounting survives', () => {
  for (const version of ['master', '4.17']) {
    it(`an in-process live update (${version})`, async () => {
      const old = await startDaemon(['--compat', version]);
      await busyGuest(old);
      const before = figures(old);
      expect(before.get(7)).toBeGreaterThan(500);
      const updated = liveUpdateInProcess(old, () => {});
      onTearDown(() => updated.close());
      expect(figures(updated)).toEqual(before);
    });
  }

  it('a per-domain migration: the guest is charged the same on the target', async () => {
    const source = await startDaemon();
    const target = await startDaemon();
    await busyGuest(source);
    const dom0 = await connect(source.options.socketPath);
    expect(await text(dom0.call(T.CONTROL, 'export-domain\x007\0dom7.xs\0'))).toBe('OK\0');
    const file = path.join(source.options.rundir, 'dom7.xs');
    expect(fs.existsSync(file)).toBe(true);
    const dom0b = await connect(target.options.socketPath);
    expect(await text(dom0b.call(T.CONTROL, `import-domain\0${file}\0`))).toBe('OK\0');
    expect(figures(target).get(7)).toBe(figures(source).get(7));
  });
});
