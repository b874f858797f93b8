/**
 * The three ways C xenstored splits a request payload into arguments. Which
 * one a message type uses decides which malformed inputs are EINVAL.
 */

/** "One arg": exactly one NUL, as the last byte; undefined otherwise. */
export function oneArg(payload: Buffer): string | undefined {
  if (payload.length === 0 || payload.indexOf(0) !== payload.length - 1) return undefined;
  return payload.toString('latin1', 0, payload.length - 1);
}

/** Every complete NUL-terminated string; trailing bytes without a NUL are ignored. */
export function strings(payload: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (let nul = payload.indexOf(0); nul >= 0; nul = payload.indexOf(0, start)) {
    out.push(payload.toString('latin1', start, nul));
    start = nul + 1;
  }
  return out;
}

/** Number of NUL bytes anywhere in the payload. */
export function nulCount(payload: Buffer): number {
  let n = 0;
  for (let i = payload.indexOf(0); i >= 0; i = payload.indexOf(0, i + 1)) n++;
  return n;
}

/** The string up to the first NUL (or the whole payload without one). */
export function firstString(payload: Buffer): string {
  const nul = payload.indexOf(0);
  return payload.toString('latin1', 0, nul < 0 ? payload.length : nul);
}

/** NUL-terminated wire form of a string reply. */
export function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'latin1');
}
