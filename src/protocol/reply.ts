/** What a handler answers: data, or data plus work to do once it is queued. */
import { OK_PAYLOAD } from '../wire/vocabulary.js';

export interface Reply {
  payload: Buffer;
  /** Runs after the reply is queued (e.g. WATCH's initial event). */
  after?: () => void;
  /** The reply is sent later, by whoever holds the request (live update -s). */
  deferred?: boolean;
}

export const OK: Reply = Object.freeze({ payload: OK_PAYLOAD });

export function data(payload: Buffer): Reply {
  return { payload };
}
