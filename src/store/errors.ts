import type { ErrorName } from '../protocol/wire.js';

/**
 * A failed operation, named by the protocol's errno string. Everything below
 * the dispatcher throws this; exactly one place turns it into an ERROR reply.
 */
export class XsError extends Error {
  constructor(readonly code: ErrorName, detail?: string) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'XsError';
  }
}

export function fail(code: ErrorName, detail?: string): never {
  throw new XsError(code, detail);
}
