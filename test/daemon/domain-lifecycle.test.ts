/**
 * The toolstack's whole domain life cycle against the simulated hypervisor:
 * create, introduce, shutdown, destroy — with C's events and clean-up —
 * and the explicit-domains mode where permissions naming domains that do
 * not exist follow C's rules.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';

tearDownAfterEach();

async function setUp(args: string[] = []) {
  const d = await startDaemon(args);
  return { d, dom0: await connect(d.options.socketPath), connect, rundir: d.options.rundir };
}

const text = async (p: Promise<{ text: string }>) => (await p).text;

describe('domain life cycle', () => {
  it('shutdown fires @releaseDomain once; destroy removes the connection, owned nodes and the socket', async () => {
    const { dom0, connect, rundir } = await setUp();
    await dom0.call(T.WRITE, '/local/domain/4\0');
    await dom0.call(T.WRITE, '/vm/owned-by-4\0x');
    await dom0.call(T.SET_PERMS, '/vm/owned-by-4\0n4\0');
    expect(await text(dom0.call(T.INTRODUCE, '4\x001\x005\0'))).toBe('OK\0');
    const guest = await connect(path.join(rundir, 'domain', '4'));
    expect(await text(guest.call(T.WATCH, '@releaseDomain\0guest\0'))).toBe('OK\0');
    expect(await guest.event()).toBe('@releaseDomain\0guest\0');
    await dom0.call(T.WATCH, '@releaseDomain\0rel\0');
    await dom0.call(T.WATCH, '/vm\0vm\0');
    expect(await dom0.event()).toBe('@releaseDomain\0rel\0');
    expect(await dom0.event()).toBe('/vm\0vm\0');

    expect(await text(dom0.call(T.CONTROL, 'domain\0shutdown\x004\0'))).toBe('OK\0');
    expect(await dom0.event()).toBe('@releaseDomain\0rel\0');
    expect(await guest.event()).toBe('@releaseDomain\0guest\0');
    // Reported once until RESUME.
    expect(await text(dom0.call(T.CONTROL, 'domain\0crash\x004\0'))).toBe('OK\0');
    expect(dom0.received.filter((f) => f.type === T.WATCH_EVENT)).toEqual([]);
    expect(await text(dom0.call(T.RESUME, '4\0'))).toBe('OK\0');
    expect(await text(dom0.call(T.CONTROL, 'domain\0shutdown\x004\0'))).toBe('OK\0');
    expect(await dom0.event()).toBe('@releaseDomain\0rel\0');
    expect(await guest.event()).toBe('@releaseDomain\0guest\0');

    expect(await text(dom0.call(T.CONTROL, 'domain\0destroy\x004\0'))).toBe('OK\0');
    expect(await dom0.event()).toBe('/vm/owned-by-4\0vm\0');
    expect(await dom0.event()).toBe('@releaseDomain\0rel\0');
    expect(await text(dom0.call(T.READ, '/vm/owned-by-4\0'))).toBe('ENOENT\0');
    expect(await text(dom0.call(T.READ, '/local/domain/4\0'))).toBe('');
    expect(await text(dom0.call(T.IS_DOMAIN_INTRODUCED, '4\0'))).toBe('F\0');
    await expect(guest.call(T.READ, 'x\0')).rejects.toThrow(/closed/);
    expect(fs.existsSync(path.join(rundir, 'domain', '4'))).toBe(false);
    expect(await text(dom0.call(T.INTRODUCE, '4\x001\x005\0'))).toBe('EINVAL\0');
    expect(await text(dom0.call(T.CONTROL, 'domain\0create\x004\0'))).toBe('OK\0');
    expect(await text(dom0.call(T.INTRODUCE, '4\x001\x005\0'))).toBe('OK\0');
  });

  it('explicit domains: a missing owner is ENOENT, other missing domains are kept but grant nothing', async () => {
    const { dom0, connect, rundir } = await setUp(['--explicit-domains']);
    await dom0.call(T.WRITE, '/p\0v');
    expect(await text(dom0.call(T.SET_PERMS, '/p\0n8\0'))).toBe('ENOENT\0');
    expect(await text(dom0.call(T.SET_PERMS, '/p\0n0\0r8\0'))).toBe('OK\0');
    expect(await text(dom0.call(T.GET_PERMS, '/p\0'))).toBe('n0\0r8\0');
    expect(await text(dom0.call(T.INTRODUCE, '8\x001\x005\0'))).toBe('EINVAL\0');
    expect(await text(dom0.call(T.CONTROL, 'domain\0create\x008\0'))).toBe('OK\0');
    expect(await text(dom0.call(T.INTRODUCE, '8\x001\x005\0'))).toBe('OK\0');
    const guest = await connect(path.join(rundir, 'domain', '8'));
    // The r8 entry was written while domain 8 did not exist: it stays stale.
    expect(await text(guest.call(T.READ, '/p\0'))).toBe('EACCES\0');
    expect(await text(dom0.call(T.SET_PERMS, '/p\0n0\0r8\0'))).toBe('OK\0');
    expect(await text(guest.call(T.READ, '/p\0'))).toBe('v');
  });
});
