/**
 * The request trace: one line per request, reply and watch event, and the
 * daemon's log lines. The same lines go to the trace file (-T), to stderr
 * (-V) and to any other listener (the sandbox page's event stream).
 */
import fs from 'node:fs';
import { messageTypeName } from '../wire/vocabulary.js';
import type { Frame } from '../protocol/frame.js';
import { openPrivateAppend } from './private-files.js';

/** Printable form of a payload: NULs as spaces, other unprintables as dots. */
function shown(payload: Buffer | string): string {
  const text = typeof payload === 'string' ? payload : payload.toString('latin1');
  return text.replace(/\0/g, ' ').replace(/[^\x20-\x7e]/g, '.');
}

/** IN: a request; OUT: a reply (eventLine: EVT, a watch event queued for the client). */
export function frameLine(direction: 'IN ' | 'OUT', connection: number, frame: Frame, at = new Date()): string {
  return `${direction} conn${connection} ${at.toISOString()} ${messageTypeName(frame.type)} req ${frame.reqId} tx ${frame.txId} (${shown(frame.payload)})`;
}

export function eventLine(connection: number, path: string, token: string, at = new Date()): string {
  return `EVT conn${connection} ${at.toISOString()} WATCH_EVENT (${shown(`${path}\0${token}\0`)})`;
}

export function logLine(text: string, at = new Date()): string {
  return `${at.toISOString()} ${text}`;
}

/** The trace file: lines appended as they happen. */
export class TraceLog {
  private fd: number;

  constructor(readonly file: string) {
    this.fd = openPrivateAppend(file);
  }

  write(line: string): void {
    fs.writeSync(this.fd, `${line}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
