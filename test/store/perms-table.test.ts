/**
 * Interned permission lists live as long as the store holds them: a guest
 * cycling SET_PERMS through ever-new lists must not grow the daemon.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/protocol/dispatch.js';
import { MessageType as T } from '../../src/wire/vocabulary.js';
import { COMPAT } from '../../src/store/compat.js';
import { Store } from '../../src/store/store.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseOptions } from '../../src/daemon/options.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('permission lists', () => {
  it('are forgotten once no node holds them, whatever a client cycles through', async () => {
    const daemon = new Daemon(parseOptions([], { XENSTORED_RUNDIR: '/nonexistent-rundir-never-used' }), () => {});
    const client = daemon.store.addSocketClient();
    const request = (type: number, payload: string) =>
      dispatch(daemon.store, client, daemon, { type, reqId: 0, txId: 0, payload: Buffer.from(payload, 'latin1') }, () => {});
    expect(request(T.WRITE, '/victim\0x').frame.type).toBe(T.WRITE);
    const baseline = daemon.store.perms.size;
    for (let a = 0; a < 20_000; a++) {
      expect(request(T.SET_PERMS, `/victim\0n5\0r${a}\0r${a + 1}\0r${a + 2}\0`).frame.type).toBe(T.SET_PERMS);
      if (a % 500 === 499) await nextTurn(); // the daemon answers one socket chunk per turn
    }
    for (let i = 0; i < 5; i++) {
      collectGarbage();
      await nextTurn();
    }
    // The node's current list, plus at most a few a collection has not reached yet.
    expect(daemon.store.perms.size).toBeLessThanOrEqual(baseline + 3);
    expect(request(T.GET_PERMS, '/victim\0').frame.payload.toString('latin1')).toBe('n5\0r19999\0r20000\0r20001\0');
  });

  it('are shared by the nodes of one store and not between stores', () => {
    const one = new Store({ compat: COMPAT.master });
    const other = new Store({ compat: COMPAT.master });
    const entries = [{ bits: 1, domid: 7, stale: false }, { bits: 2, domid: 9, stale: false }];
    expect(one.perms.intern(entries)).toBe(one.perms.intern(entries.map((e) => ({ ...e }))));
    expect(one.perms.intern(entries)).not.toBe(other.perms.intern(entries));
    expect(one.perms.intern(entries)).toEqual(other.perms.intern(entries));
  });
});
