/**
 * Model-based property test: random request sequences from two dom0
 * sockets and two guest domains go to the real daemon pipeline (through
 * test/protocol/harness.ts) and to the reference model (src/testing/model.ts); every
 * reply and every watch event of every connection must be the same. The
 * operations come from the testing kit's shared vocabulary (src/testing).
 *
 * Compared per request: the reply (DIRECTORY_PART generations normalised to
 * "G", the model has no generation numbers), the events each connection
 * received, and for the sender which events came before / after its reply.
 *
 * Environment: MODEL_RUNS (default 600 per version), MODEL_SEED, MODEL_PATH
 * (replay a shrunk counterexample), MODEL_MAX_OPS (about how many requests
 * per sequence, default 50), MODEL_STATS=1 (print how often each reply was
 * seen), MODEL_DUMP=1 (print every session).
 *
 * During its writing this property found several simulator bugs, now fixed
 * and pinned down by the `was BUG:` tests in test/protocol/transcripts.test.ts.
 * A failure is real (use the printed seed/path to replay it).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Harness, MessageType as T, type Conn } from '../protocol/harness.js';
import { messageTypeName } from '../../src/wire/vocabulary.js';
import { operationSequences } from '../../src/testing/arbitraries.js';
import { Model, type Version } from '../../src/testing/model.js';
import { transactionId, type Operation } from '../../src/testing/operations.js';
import { checkStore } from '../../src/store/check-store.js';

const RUNS = Number(process.env.MODEL_RUNS ?? 600);
const MAX_OPS = Number(process.env.MODEL_MAX_OPS ?? 50);
const SEED = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined;
const PATH = process.env.MODEL_PATH || undefined;

const CONNS = ['dom0', 'dom0b', 'dom1', 'dom2'] as const;

const sequence = operationSequences({ maxLength: MAX_OPS });

// --- running one sequence on both ------------------------------------------------------

/** Set-up requests (dom0): homes like libxl's and a shared area. */
const SETUP: readonly [number, string][] = [
  [T.WRITE, '/local/domain/1|'],
  [T.SET_PERMS, '/local/domain/1|n1|'],
  [T.WRITE, '/local/domain/2|'],
  [T.SET_PERMS, '/local/domain/2|n0|r2|'],
  [T.WRITE, '/local/domain/2/data|'],
  [T.SET_PERMS, '/local/domain/2/data|n2|'],
  [T.WRITE, '/shared|'],
  [T.SET_PERMS, '/shared|n0|b1|r2|'],
  [T.WRITE, '/a/b|'],
];

/** Reply categories seen, to check the generator reaches the interesting cases. */
const seen = new Map<string, number>();
function count(key: string): void {
  seen.set(key, (seen.get(key) ?? 0) + 1);
}

function normalise(text: string): string {
  return text.replace(/^=\d+\|/, '=G|');
}

function render(name: string, type: number, payload: string, txId: number, text: string, before: Map<string, string[]>, after: string[]): string {
  const evs = CONNS.filter((n) => (before.get(n)?.length ?? 0) > 0).map((n) => ` ; ${n}: ${before.get(n)!.join(' ')}`).join('');
  const tail = after.length > 0 ? ` ; then ${after.join(' ')}` : '';
  return `${name}${txId ? `#${txId}` : ''} ${messageTypeName(type)} ${payload} → ${text}${evs}${tail}`;
}

function runSequence(version: Version, ops: readonly Operation[]): void {
  const h = new Harness({ version });
  const m = new Model(version);
  const sim: Conn[] = [h.socket('dom0'), h.socket('dom0b'), h.guest(1, 'dom1'), h.guest(2, 'dom2')];
  m.addConn('dom0', 0, true);
  m.addConn('dom0b', 0, true);
  m.addConn('dom1', 1, false);
  m.addConn('dom2', 2, false);
  const log: string[] = [];

  const step = (ci: number, type: number, payload: string, txId: number, setup = false): void => {
    const name = CONNS[ci]!;
    const s = h.send(sim[ci]!, type, payload, txId);
    const simBefore = new Map<string, string[]>();
    for (const [n, evs] of s.events) if (n !== name) simBefore.set(n, [...evs]);
    if (s.eventsBefore.length > 0) simBefore.set(name, [...s.eventsBefore]);
    const simLine = render(name, type, payload, txId, type === T.DIRECTORY_PART ? normalise(s.text) : s.text, simBefore, [...s.eventsAfter]);
    const r = m.request(name, type, payload, txId);
    const modelLine = render(name, type, payload, txId, type === T.DIRECTORY_PART ? normalise(r.text) : r.text, r.events, r.after);
    if (!setup) {
      count(`${messageTypeName(type)}:${r.text.startsWith('=') ? '=' : r.text}`);
      if ([...r.events.keys()].some((n) => n === 'dom1' || n === 'dom2')) count('guest-events');
      if (r.events.size > 0) count('events');
      if (type === T.TRANSACTION_END && r.text === 'OK' && r.events.size > 0) count('commit-events');
    }
    log.push(simLine);
    checkStore(h.store);
    if (simLine !== modelLine) {
      throw new Error(`simulator and model differ (${version}) at step ${log.length}:\n  sim:   ${simLine}\n  model: ${modelLine}\n\nsession:\n${log.map((l) => `  ${l}`).join('\n')}`);
    }
    for (const domid of [0, 1, 2]) {
      const simMemory = memoryOutsideTransactions(h, domid);
      if (simMemory !== m.memory(domid)) {
        throw new Error(`memory of domain ${domid} differs (${version}) after step ${log.length}: sim ${simMemory}, model ${m.memory(domid)}\n\nsession:\n${log.map((l) => `  ${l}`).join('\n')}`);
      }
    }
  };

  try {
    for (const [type, payload] of SETUP) step(0, type, payload, 0, true);
    for (const o of ops) {
      const open = [...m.conn(CONNS[o.conn]!).txs.keys()].sort((a, b) => a - b);
      step(o.conn, o.type, o.payload, transactionId(o, open));
    }
    if (process.env.MODEL_DUMP) console.log(log.join('\n'));
  } finally {
    void h.close();
  }
}

/** The simulator's accounting for `domid`, less its transactions' private copies (which the model does not keep). */
function memoryOutsideTransactions(h: Harness, domid: number): number {
  const domain = h.store.domains.get(domid);
  if (!domain) return 0;
  let copies = 0;
  for (const c of h.store.clients.values()) if (c.domid === domid) for (const tx of c.transactions.values()) copies += h.store.transactionBytes(tx);
  return h.store.memoryOf(domain) - copies;
}

describe.each(['master', '4.17'] as const)('store model vs simulator — %s', (version) => {
  it('random sequences give identical replies and watch events', { timeout: 300_000 }, () => {
    fc.assert(
      fc.property(sequence, (ops) => runSequence(version, ops)),
      { numRuns: RUNS, seed: SEED, path: PATH, endOnFailure: false },
    );
  });
});

describe('the generator reaches the interesting cases', () => {
  afterAll(() => seen.clear());
  it('saw conflicts, permission errors, events and commits with events', (ctx) => {
    if (process.env.MODEL_STATS) console.log([...seen].sort().map(([k, v]) => `${k} ${v}`).join('\n'));
    // Only meaningful after the properties above ran with enough runs.
    if (seen.size === 0 || RUNS < 100) ctx.skip();
    for (const key of [
      'TRANSACTION_END:EAGAIN', 'TRANSACTION_END:OK', 'READ:EACCES', 'READ:ENOENT', 'WRITE:EACCES', 'RM:OK', 'RM:ENOENT',
      'SET_PERMS:EPERM', 'SET_PERMS:ENOENT', 'SET_PERMS:EINVAL', 'SET_PERMS:ENOSPC', 'WATCH:EEXIST', 'UNWATCH:ENOENT',
      'TRANSACTION_START:EBUSY', 'READ:EINVAL', 'MKDIR:OK', 'DIRECTORY_PART:=', 'events', 'guest-events', 'commit-events',
    ]) {
      expect(seen.get(key) ?? 0, key).toBeGreaterThan(0);
    }
  });
});
