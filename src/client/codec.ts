/**
 * Payload helpers for the client side: building NUL-terminated argument
 * lists and taking replies apart. Strings travel as UTF-8 (paths are ASCII
 * anyway; tokens and control arguments may be anything without a NUL).
 */
import { XsProtocolError } from './errors.js';

/** Every argument followed by one NUL: `a|b|c|`. */
export function encodeArgs(...args: string[]): Buffer {
  return Buffer.from(args.map((a) => `${a}\0`).join(''), 'utf8');
}

/**
 * The NUL-terminated strings of a reply. A trailing piece without a NUL is
 * kept as a last string (daemons are not always consistent about the final
 * NUL, e.g. oxenstored's control replies).
 */
export function decodeStrings(payload: Buffer): string[] {
  if (payload.length === 0) return [];
  const end = payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  return payload.toString('utf8', 0, end).split('\0');
}

/** A reply holding one string, with or without its terminating NUL. */
export function decodeString(payload: Buffer): string {
  const nul = payload.indexOf(0);
  return payload.toString('utf8', 0, nul < 0 ? payload.length : nul);
}

/** A reply holding one unsigned decimal number. */
export function decodeUint(payload: Buffer, what: string): number {
  const text = decodeString(payload);
  if (!/^\d+$/.test(text)) throw new XsProtocolError(`${what}: expected a decimal number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Children in DIRECTORY form: `name|name|` (empty payload for none). */
export function decodeNames(bytes: Buffer): string[] {
  return bytes.length === 0 ? [] : decodeStrings(bytes);
}
