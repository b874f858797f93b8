/**
 * The shared vocabulary of generated tests: one request of one connection,
 * as plain data, so that the same sequences can drive the reference model,
 * an in-process daemon, a spawned one, and be printed and replayed.
 *
 * Payloads and replies are text with `|` standing for NUL; a reply is
 * 'OK', an error name (e.g. 'ENOENT'), or '=' followed by the payload.
 */
import type { Frame } from '../protocol/frame.js';
import { messageTypeName, MessageType } from '../wire/vocabulary.js';

export interface Operation {
  /** Index of the connection that sends it. */
  readonly conn: number;
  /**
   * Which of the connection's open transactions it runs in: an index among
   * them (ascending ids), 'last' for the newest, or null for none (also
   * when there is no such transaction).
   */
  readonly tx: number | 'last' | null;
  /** A MessageType number. */
  readonly type: number;
  readonly payload: string;
}

/** The request's payload bytes. */
export function payloadBytes(payload: string): Buffer {
  return Buffer.from(payload.replace(/\|/g, '\0'), 'latin1');
}

/** Bytes as text, NUL shown as `|`. */
export function showBytes(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/\0/g, '|');
}

/** A reply frame in the vocabulary's text form (`OK`, `EACCES`, `=a|b|`; a malformed error as `ERROR(...)`). */
export function replyText(frame: Pick<Frame, 'type' | 'payload'>): string {
  const text = showBytes(frame.payload);
  if (frame.type === MessageType.ERROR) return text.endsWith('|') ? text.slice(0, -1) : `ERROR(${text})`;
  return text === 'OK|' ? 'OK' : `=${text}`;
}

/** The transaction id an operation runs in, given its connection's open transaction ids (ascending); 0 for none. */
export function transactionId(op: Operation, open: readonly number[]): number {
  if (op.tx === null) return 0;
  return (op.tx === 'last' ? open[open.length - 1] : open[op.tx]) ?? 0;
}

/** `conn#tx TYPE payload`, for failure messages. */
export function describeOperation(op: Operation, txId = 0): string {
  return `${op.conn}${txId ? `#${txId}` : ''} ${messageTypeName(op.type)} ${op.payload}`;
}
