import type { ErrorName } from '../wire/vocabulary.js';

/**
 * A failed operation, named by the protocol's errno string. Everything below
 * the dispatcher throws this; exactly one place turns it into an ERROR reply.
 *
 * It is an answer, not a bug (every WRITE that creates a node goes through
 * an ENOENT), so it carries no stack trace: capturing one cost more than
 * the rest of such a request.
 */
export class StoreError extends Error {
  readonly code: ErrorName;

  constructor(code: ErrorName, detail?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail ? `${code}: ${detail}` : code);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.name = 'StoreError';
  }
}

export function fail(code: ErrorName, detail?: string): never {
  throw new StoreError(code, detail);
}
