/**
 * Output waiting for a guest that does not read, and its memory quota, as
 * C charges it in 4.17 and master alike: send_reply adds `len + 16` to the
 * guest's memory (checked only over C's 16-byte fixed buffer: ENOMEM),
 * send_event adds it checked (the event is dropped), write_messages takes
 * it off once written, and at its quota a guest's requests are not read
 * (domain_can_read) until its memory drops.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADER_SIZE } from '../../src/wire/vocabulary.js';
import { Harness, MessageType as T, type Version } from '../protocol/harness.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

const QUOTA = 3000;
const HOME = '/local/domain/5';

/** Guest 5 with a memory quota of QUOTA, watching dom0's /ev (which it may read); dom0 is the admin socket. */
function guestWatching(version: Version) {
  const h = new Harness({ version });
  harnesses.push(h);
  // Before the domain object exists: master copies the quotas into it.
  expect(h.control('quota', 'set', 'memory', String(QUOTA)).text).toBe('OK');
  const dom0 = h.adminConn();
  expect(h.req(dom0, T.WRITE, `${HOME}|`)).toBe('OK');
  expect(h.req(dom0, T.SET_PERMS, `${HOME}|n5|`)).toBe('OK');
  expect(h.req(dom0, T.WRITE, '/ev|')).toBe('OK');
  expect(h.req(dom0, T.SET_PERMS, '/ev|n0|r5|')).toBe('OK');
  const guest = h.guest(5);
  expect(h.req(guest, T.WATCH, '/ev|tok|')).toBe('OK');
  const memory = () => h.store.memoryOf(h.store.domains.get(5)!);
  return { h, dom0, guest, memory };
}

/** An event for /ev/<i> as queued: header, path, NUL, token, NUL. */
const eventBytes = (i: number) => HEADER_SIZE + `/ev/${i}`.length + 1 + 'tok'.length + 1;

describe.each(['master', '4.17'] as const)('output queued for a guest that does not read — %s', (version) => {
  it('is charged to its memory, shown by `quota`, and refunded once it is taken', () => {
    const { h, dom0, guest, memory } = guestWatching(version);
    const before = memory();
    h.hold(guest);
    for (let i = 0; i < 3; i++) expect(h.req(dom0, T.WRITE, `/ev/${i}|`)).toBe('OK');
    const queued = eventBytes(0) + eventBytes(1) + eventBytes(2);
    expect(memory()).toBe(before + queued);
    expect(h.control('quota', '5').text).toMatch(new RegExp(`memory\\s*:\\s*${before + queued}\\b`));
    expect(h.unhold(guest)).toHaveLength(3);
    expect(memory()).toBe(before);
  });

  it('an event that would break the quota is dropped, however short; the guest is not read at its quota until it reads', async () => {
    const { h, dom0, guest, memory } = guestWatching(version);
    h.hold(guest);
    let written = 0;
    // dom0's nodes are not the guest's: only the queued events grow its memory.
    while (memory() + eventBytes(written) < QUOTA && written < QUOTA) expect(h.req(dom0, T.WRITE, `/ev/${written++}|`)).toBe('OK');
    const full = memory();
    expect(full).toBeGreaterThan(QUOTA - eventBytes(written));
    expect(h.req(dom0, T.WRITE, `/ev/${written++}|`)).toBe('OK'); // its 11-byte event is dropped
    expect(memory()).toBe(full);
    // The guest at its quota exactly: its requests are not read.
    h.store.quotas.memory = full;
    h.store.domains.get(5)!.quotas.memory = full;
    h.send(guest, T.READ, `${HOME}|`);
    await nextTurn();
    expect(guest.recorder.received.filter((m) => m.type !== T.WATCH_EVENT)).toEqual([]);
    expect(h.unhold(guest).filter((m) => m.type === T.WATCH_EVENT)).toHaveLength(written - 1);
    // Below its quota again: the daemon looks again after the next request it handles.
    h.req(dom0, T.READ, `${HOME}|`);
    await nextTurn();
    expect(guest.recorder.drain().map((m) => m.type)).toEqual([T.READ]);
  });

  it('a guest at its memory quota through its own nodes, with no output unsent, is still served (Known limits)', async () => {
    const { h, guest, memory } = guestWatching(version);
    expect(h.req(guest, T.WRITE, `${HOME}/mine|${'v'.repeat(500)}`)).toBe('OK');
    h.store.quotas.memory = memory();
    h.store.domains.get(5)!.quotas.memory = memory();
    expect(h.req(guest, T.READ, `${HOME}/mine|`)).toBe('ENOMEM'); // served: the 500-byte reply is over the quota
  });
});
