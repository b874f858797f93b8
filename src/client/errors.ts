/**
 * Errors raised by the XenStore client. Three kinds, so callers can tell
 * apart "the daemon said no" from "the conversation broke":
 *
 * - XsError: the daemon answered with an ERROR reply (or the client refused
 *   to send something the daemon would refuse the same way, e.g. E2BIG).
 * - XsProtocolError: a reply did not make sense (wrong type, bad number).
 * - XsConnectionError: the connection is gone; every request still waiting
 *   for its reply rejects with one of these.
 */
import { messageTypeName, type ErrorName } from '../wire/vocabulary.js';

/** An errno name as sent by the daemon; usually one of ERROR_NAMES. */
export type XsErrorCode = ErrorName | (string & {});

/** The daemon answered a request with an ERROR reply. */
export class XsError extends Error {
  /**
   * @param code the errno name from the reply, e.g. 'ENOENT'
   * @param requestType message type of the failed request
   * @param subject the request's first argument (usually the path), for the message
   */
  constructor(
    readonly code: XsErrorCode,
    readonly requestType: number,
    readonly subject?: string,
    detail?: string,
  ) {
    super(`${code}: ${messageTypeName(requestType)}${subject === undefined ? '' : ` ${JSON.stringify(subject)}`}${detail ? ` (${detail})` : ''}`);
    this.name = 'XsError';
  }
}

/** True when `e` is an XsError, and (if given) carries `code`. */
export function isXsError(e: unknown, code?: XsErrorCode): e is XsError {
  return e instanceof XsError && (code === undefined || e.code === code);
}

/** A reply that does not fit the request it answers, or an unframeable stream. */
export class XsProtocolError extends Error {
  readonly code = 'XS_PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'XsProtocolError';
  }
}

/** The connection to the daemon is closed, or was lost. */
export class XsConnectionError extends Error {
  readonly code = 'XS_CONNECTION_CLOSED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'XsConnectionError';
  }
}
