/** Every message type's handler and its properties, in one table. */
import type { HandlerEntry, HandlerRequest } from '../handler.js';
import { MessageType } from '../../wire/vocabulary.js';
import { strings } from '../payload.js';
import { introduce, release, resume, setTarget, getDomainPath, isDomainIntroduced } from './domains.js';
import { getFeature, getQuota, setFeature, setQuota } from './features-quotas.js';
import { directory, directoryPartHandler, getPerms, mkdir, read, rm, setPerms, write } from './nodes.js';
import { transactionEnd, transactionStart } from './transactions.js';
import { resetWatches, unwatch, watch } from './watches.js';

function control(r: HandlerRequest) {
  return r.services.control(r, strings(r.payload));
}

export const HANDLERS: ReadonlyMap<number, HandlerEntry> = new Map<number, HandlerEntry>([
  [MessageType.CONTROL, { handle: control, privileged: true }],
  [MessageType.DIRECTORY, { handle: directory }],
  [MessageType.READ, { handle: read }],
  [MessageType.GET_PERMS, { handle: getPerms }],
  [MessageType.WATCH, { handle: watch, ignoresTransaction: true }],
  [MessageType.UNWATCH, { handle: unwatch, ignoresTransaction: true }],
  [MessageType.TRANSACTION_START, { handle: transactionStart }],
  [MessageType.TRANSACTION_END, { handle: transactionEnd }],
  [MessageType.INTRODUCE, { handle: introduce, privileged: true }],
  [MessageType.RELEASE, { handle: release, privileged: true }],
  [MessageType.GET_DOMAIN_PATH, { handle: getDomainPath }],
  [MessageType.WRITE, { handle: write }],
  [MessageType.MKDIR, { handle: mkdir }],
  [MessageType.RM, { handle: rm }],
  [MessageType.SET_PERMS, { handle: setPerms }],
  [MessageType.IS_DOMAIN_INTRODUCED, { handle: isDomainIntroduced, privileged: true }],
  [MessageType.RESUME, { handle: resume, privileged: true }],
  [MessageType.SET_TARGET, { handle: setTarget, privileged: true }],
  [MessageType.RESET_WATCHES, { handle: resetWatches }],
  [MessageType.DIRECTORY_PART, { handle: directoryPartHandler }],
  [MessageType.GET_FEATURE, { handle: getFeature }],
  [MessageType.SET_FEATURE, { handle: setFeature, privileged: true }],
  [MessageType.GET_QUOTA, { handle: getQuota, privileged: true }],
  [MessageType.SET_QUOTA, { handle: setQuota, privileged: true }],
]);
