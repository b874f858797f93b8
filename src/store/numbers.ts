/** C's lenient number parsing, reproduced where the daemon relies on it. */

/** atoi: optional blanks and sign, decimal digits up to the first other byte; garbage gives 0. */
export function atoi(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(text)!;
  if (!m[2]) return 0;
  let value = BigInt(m[2]);
  const LONG_MAX = (1n << 63n) - 1n;
  if (m[1] === '-') value = value > LONG_MAX + 1n ? -(LONG_MAX + 1n) : -value;
  else if (value > LONG_MAX) value = LONG_MAX;
  return Number(BigInt.asIntN(32, value));
}

/**
 * Master's domid syntax, strtoul in base 10 with nothing after the number
 * and at most 65535: blanks and a sign may lead, "" is 0, "-5" wraps and
 * fails. Undefined when invalid.
 */
export function strictDomid(text: string): number | undefined {
  if (text === '') return 0;
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(text);
  if (!m) return undefined;
  const value = BigInt(m[2]!);
  const wrapped = m[1] === '-' && value !== 0n ? -1n : value;
  return wrapped < 0n || wrapped > 65535n ? undefined : Number(wrapped);
}
