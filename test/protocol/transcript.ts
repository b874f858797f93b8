/**
 * Table-driven transcripts in the style of mirage's ocaml-xenstore tests:
 * each row is (connection, request, expected reply, expected events) and
 * reads like a session log:
 *
 *   ['dom0', 'WRITE', '/a/b|hello', 'OK'],
 *   ['dom5', 'READ',  '/a/b|',      'EACCES'],
 *   ['dom0', 'WATCH', '/a|tok|',    'OK', { dom0: ['/a|tok|'] }],
 *
 * Connection names: `dom0`, `dom0b`, `dom0c`, … are privileged local socket
 * clients; `domN` (N > 0) is guest domain N's ring connection. A guest is
 * introduced by the harness's admin socket the first time a row uses it,
 * unless a row introduced it explicitly (an INTRODUCE row from a dom0
 * connection attaches the guest under its name). A `#id` suffix sends the
 * request with that tx_id: `dom0#1`.
 *
 * Payloads use `|` for NUL. Expected replies: `OK` (payload `OK|`), an
 * error name (ERROR reply, payload `<name>|`), or `=` followed by the exact
 * payload (`=hello`, `=a|b|`, `=` for empty).
 *
 * Events: a map from connection name to the exact event payloads that
 * connection received because of the row, in order. Connections not listed
 * must receive nothing. For the sender, every event must arrive *before*
 * the reply, except for WATCH, whose (initial) event must arrive *after*
 * the OK: this is checked on every row.
 *
 * The whole transcript is rendered as text lines, actual and expected, and
 * compared at once, so a failure shows as a readable diff of the session.
 */
import { expect } from 'vitest';
import { Harness, MessageType, type HarnessOptions } from './harness.js';

export type TypeName = keyof typeof MessageType;
export type Events = Readonly<Record<string, readonly string[]>>;
export type Row = readonly [who: string, type: TypeName | number, payload: string | Buffer, reply: string, events?: Events];

function typeNumber(type: TypeName | number): number {
  return typeof type === 'number' ? type : MessageType[type];
}

function typeLabel(type: TypeName | number): string {
  return typeof type === 'number' ? `TYPE_${type}` : type;
}

function abbreviate(text: string): string {
  // Long runs of one character (path-length tests) are shown as c*N.
  return text.replace(/(.)\1{15,}/g, (run, c: string) => `${c}*${run.length}`);
}

function payloadLabel(payload: string | Buffer): string {
  return abbreviate(typeof payload === 'string' ? payload : payload.toString('latin1').replace(/\0/g, '|'));
}

function renderEvents(order: string[], events: Events): string {
  const names = Object.keys(events).filter((n) => events[n]!.length > 0);
  names.sort((a, b) => rank(order, a) - rank(order, b) || a.localeCompare(b));
  return names.map((n) => ` ; ${n}: ${events[n]!.map(abbreviate).join(' ')}`).join('');
}

function rank(order: string[], name: string): number {
  const i = order.indexOf(name);
  return i < 0 ? 1e9 : i;
}

export class Transcript {
  readonly h: Harness;

  constructor(options: HarnessOptions | Harness = {}) {
    this.h = options instanceof Harness ? options : new Harness(options);
  }

  private conn(name: string) {
    const existing = this.h.conns.find((c) => c.name === name && !c.closed);
    if (existing) return existing;
    const m = /^dom(\d+)$/.exec(name);
    if (name.startsWith('dom0') && !(m && Number(m[1]) !== 0)) return this.h.socket(name);
    if (!m) throw new Error(`bad connection name ${name}`);
    const domid = Number(m[1]);
    const r = this.h.send(this.h.adminConn(), MessageType.INTRODUCE, `${domid}|1|${10 + domid}|`);
    if (r.text !== 'OK' || r.events.size > 0) {
      // Implicit set-up must be invisible; if it is not, make the transcript show it.
      const evs = [...r.events].map(([n, e]) => `${n}: ${e.join(' ')}`).join(' ; ');
      this.surprises.push(`(implicit INTRODUCE ${domid} → ${r.text}${evs ? ` ; ${evs}` : ''})`);
    }
    return this.h.attachGuest(domid, name);
  }

  /** Output of implicit set-up steps that should have been silent. */
  private readonly surprises: string[] = [];

  /**
   * Runs rows and compares the rendered session with the expected one.
   * Returns nothing; fails the current test on any difference.
   */
  run(rows: readonly Row[]): void {
    const actual: string[] = [];
    const expected: string[] = [];
    const lines: [Row, string, Events][] = [];
    for (const row of rows) {
      const [who, type, payload] = row;
      const [name, tx] = who.split('#');
      const conn = this.conn(name!);
      for (const s of this.surprises.splice(0)) lines.push([['-', 'INTRODUCE', '', s] as Row, '', {}]);
      const result = this.h.send(conn, typeNumber(type), payload, tx === undefined ? 0 : Number(tx));
      // A successful INTRODUCE makes the guest available under its usual name.
      if (typeNumber(type) === MessageType.INTRODUCE && result.text === 'OK') {
        const domid = Number(String(typeof payload === 'string' ? payload : payload.toString('latin1')).split(/[|\0]/)[0]);
        if (Number.isInteger(domid) && domid > 0) this.h.attachGuest(domid);
      }
      let text = result.text;
      const isWatch = typeNumber(type) === MessageType.WATCH;
      const wrongSide = isWatch ? result.eventsBefore : result.eventsAfter;
      if (wrongSide.length > 0) text += ` [ORDER: ${isWatch ? 'before' : 'after'} reply: ${wrongSide.join(' ')}]`;
      const got: Record<string, string[]> = {};
      for (const [n, evs] of result.events) got[n] = [...evs];
      lines.push([row, text, got]);
    }
    const order = this.h.conns.map((c) => c.name);
    for (const [row, text, got] of lines) {
      const [who, type, payload, reply, events] = row;
      if (who === '-') {
        actual.push(reply);
        expected.push('(no implicit output)');
        continue;
      }
      const head = `${who} ${typeLabel(type)} ${payloadLabel(payload)} → `;
      actual.push(head + text + renderEvents(order, got));
      expected.push(head + reply + renderEvents(order, events ?? {}));
    }
    expect(actual).toEqual(expected);
  }

  async close(): Promise<void> {
    await this.h.close();
  }
}

/** Runs one transcript on a fresh daemon of the given version. */
export async function transcript(version: 'master' | '4.17', rows: readonly Row[], argv: string[] = []): Promise<Harness> {
  const t = new Transcript({ version, argv });
  try {
    t.run(rows);
  } finally {
    await t.close();
  }
  return t.h;
}
