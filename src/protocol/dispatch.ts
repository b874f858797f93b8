/**
 * One request through C xenstored's pipeline: unknown type (ENOSYS),
 * privilege (EACCES), transaction id (ENOENT), then the handler. Every
 * failure becomes an ERROR reply here and nowhere else.
 */
import type { Requester } from '../store/requester.js';
import { opContext } from '../store/context.js';
import { StoreError } from '../store/errors.js';
import { replyFits } from '../store/quota-gate.js';
import type { Store } from '../store/store.js';
import type { Frame } from './frame.js';
import type { Services } from './handler.js';
import { HANDLERS } from './handlers/index.js';
import { cString } from './payload.js';
import type { Reply } from './reply.js';
import { MessageType, PAYLOAD_MAX, type ErrorName } from '../wire/vocabulary.js';

export interface Answer {
  frame: Frame;
  after?: () => void;
  deferred?: boolean;
}

function errorFrame(request: Frame, code: ErrorName): Frame {
  return { type: MessageType.ERROR, reqId: request.reqId, txId: request.txId, payload: cString(code) };
}

export function dispatch(store: Store, client: Requester, services: Services, frame: Frame, log: (line: string) => void): Answer {
  let reply: Reply;
  try {
    reply = run(store, client, services, frame);
  } catch (e) {
    if (e instanceof StoreError) return { frame: errorFrame(frame, e.code) };
    // A bug must cost one request, not the daemon; C reports untranslatable errors as EINVAL.
    log(`internal error handling ${frame.type}: ${e instanceof Error ? e.stack : String(e)}`);
    return { frame: errorFrame(frame, 'EINVAL') };
  }
  if (reply.payload.length > PAYLOAD_MAX) return { frame: errorFrame(frame, 'E2BIG') };
  if (!replyFits(store, client, reply.payload.length)) return { frame: errorFrame(frame, 'ENOMEM') };
  return {
    frame: { type: frame.type, reqId: frame.reqId, txId: frame.txId, payload: reply.payload },
    after: reply.after,
    deferred: reply.deferred,
  };
}

function run(store: Store, client: Requester, services: Services, frame: Frame): Reply {
  const entry = frame.type <= store.compat.lastMessageType ? HANDLERS.get(frame.type) : undefined;
  if (!entry) throw new StoreError('ENOSYS', `message type ${frame.type}`);
  if (entry.privileged && !client.privileged) throw new StoreError('EACCES', 'privileged operation');
  let tx;
  if (!entry.ignoresTransaction && frame.txId !== 0) {
    tx = client.transactions.get(frame.txId);
    if (!tx) throw new StoreError('ENOENT', `no transaction ${frame.txId}`);
  }
  const ctx = opContext(store, client, tx);
  return entry.handle({ store, client, ctx, frame, payload: frame.payload, services });
}
