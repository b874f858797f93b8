/** The shape every message handler has, and what it is handed. */
import type { Requester } from '../store/requester.js';
import type { OpContext } from '../store/context.js';
import type { Store } from '../store/store.js';
import type { DomainHooks } from '../store/domain-ops.js';
import type { Frame } from './frame.js';
import type { Reply } from './reply.js';

/** Daemon-wide facilities some handlers need beyond the store. */
export interface Services extends DomainHooks {
  /** CONTROL: one sub-command (check, log, quota, live-update, …). */
  control(request: HandlerRequest, args: string[]): Reply;
}

export interface HandlerRequest {
  readonly store: Store;
  readonly client: Requester;
  readonly ctx: OpContext;
  readonly frame: Frame;
  readonly payload: Buffer;
  readonly services: Services;
}

export type Handler = (request: HandlerRequest) => Reply;

export interface HandlerEntry {
  readonly handle: Handler;
  /** Only privileged connections may send it (EACCES otherwise). */
  readonly privileged?: boolean;
  /** tx_id is ignored rather than checked (WATCH, UNWATCH). */
  readonly ignoresTransaction?: boolean;
}
