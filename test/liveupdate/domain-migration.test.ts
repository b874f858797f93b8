/**
 * Per-domain migration between two running simulators: a guest with a
 * watch and an open transaction is exported from one and imported into the
 * other, where its nodes, permissions and watches are back, its transaction
 * exists and fails with EAGAIN, and its client reconnects to the new
 * daemon's domain socket.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { describe, expect, it } from 'vitest';
import { connect, startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';

tearDownAfterEach();

const daemon = () => startDaemon();
const client = connect;

const text = async (p: Promise<{ text: string }>) => (await p).text;

describe('per-domain migration', () => {
  it('moves a guest with a watch and an open transaction to another daemon', async () => {
    const source = await daemon();
    const target = await daemon();
    const dom0 = await client(source.options.socketPath);
    await dom0.call(T.WRITE, '/local/domain/7\0');
    await dom0.call(T.SET_PERMS, '/local/domain/7\0n7\0r0\0');
    expect(await text(dom0.call(T.INTRODUCE, '7\x00123\x009\0'))).toBe('OK\0');

    const guest = await client(path.join(source.options.rundir, 'domain', '7'));
    expect(await text(guest.call(T.WRITE, 'data/x\0one'))).toBe('OK\0');
    expect(await text(guest.call(T.SET_PERMS, 'data/x\0n7\0r3\0'))).toBe('OK\0');
    expect(await text(guest.call(T.WATCH, 'data\0tok\0'))).toBe('OK\0');
    expect(await guest.event()).toBe('data\0tok\0');
    const tx = Number((await text(guest.call(T.TRANSACTION_START, '\0'))).slice(0, -1));
    expect(await text(guest.call(T.WRITE, 'data/y\0two', tx))).toBe('OK\0');

    expect(await text(dom0.call(T.CONTROL, 'export-domain\x007\0dom7.xs\0'))).toBe('OK\0');
    const file = path.join(source.options.rundir, 'dom7.xs');
    const kinds = decodeStream(fs.readFileSync(file)).records.map((r) => r.record.kind);
    expect(kinds).toEqual(['connection', 'watch', 'transaction', 'node', 'node', 'node', 'node', 'node', 'domain']);

    const dom0b = await client(target.options.socketPath);
    await dom0b.call(T.WATCH, '@introduceDomain\0intro\0');
    expect(await dom0b.event()).toBe('@introduceDomain\0intro\0');
    expect(await text(dom0b.call(T.CONTROL, `import-domain\0${file}\0`))).toBe('OK\0');
    expect(await dom0b.event()).toBe('@introduceDomain\0intro\0');
    expect(await text(dom0b.call(T.IS_DOMAIN_INTRODUCED, '7\0'))).toBe('T\0');
    expect(await text(dom0b.call(T.READ, '/local/domain/7/data/x\0'))).toBe('one');
    expect(await text(dom0b.call(T.GET_PERMS, '/local/domain/7/data/x\0'))).toBe('n7\0r3\0');
    expect(await text(dom0b.call(T.READ, '/local/domain/7/data/y\0'))).toBe('ENOENT\0');
    // Importing twice is refused and changes nothing.
    expect(await text(dom0b.call(T.CONTROL, `import-domain\0${file}\0`))).toBe('domain 7 is already introduced here\0');

    guest.close();
    const moved = await client(path.join(target.options.rundir, 'domain', '7'));
    expect(await text(moved.call(T.READ, 'data/x\0'))).toBe('one');
    expect(await text(moved.call(T.READ, 'data/y\0', tx))).toBe('two');
    expect(await text(moved.call(T.TRANSACTION_END, 'T\0', tx))).toBe('EAGAIN\0');
    expect(await text(dom0b.call(T.WRITE, '/local/domain/7/data/z\0three'))).toBe('OK\0');
    expect(await moved.event()).toBe('data/z\0tok\0');
  });

  it('refuses a corrupt stream without touching the daemon', async () => {
    const target = await daemon();
    const dom0 = await client(target.options.socketPath);
    const file = path.join(target.options.rundir, 'bad.xs');
    fs.writeFileSync(file, Buffer.from('xenstore\0\0\0\x02\0\0\0\0\x02\0\0\0\x40\0\0\0', 'latin1'));
    const reply = await text(dom0.call(T.CONTROL, `import-domain\0${file}\0`));
    expect(reply).toMatch(/^CONNECTION_DATA #0 at offset 0x10: /);
    expect(await text(dom0.call(T.DIRECTORY, '/\0'))).toBe('tool\0');
  });
});
