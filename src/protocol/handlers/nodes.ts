/** READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET_PERMS, SET_PERMS. */
import { nodePath } from '../../store/canonical-path.js';
import { fail } from '../../store/errors.js';
import { valueBytes } from '../../store/node.js';
import { atoi } from '../../store/numbers.js';
import {
  directoryPart, getNode, makeDirectory, removeNode, resolveNewPerms, setNodePerms, writeNode, PERM_OWNER, PERM_READ, PERM_WRITE,
} from '../../store/operations.js';
import { isSpecialPath } from '../../store/path.js';
import { enforce } from '../../store/quota-gate.js';
import { formatPerms, parsePerms, permFor } from '../../store/permissions.js';
import type { HandlerRequest } from '../handler.js';
import { firstString, nulCount, oneArg, strings } from '../payload.js';
import { data, OK, type Reply } from '../reply.js';
import { PAYLOAD_MAX } from '../../wire/vocabulary.js';

/** GET_PERMS and SET_PERMS may name the special nodes where they are nodes (master). */
function specialAllowed(r: HandlerRequest) {
  return r.store.compat.specialPathsAreNodes ? 'allowed' : 'never';
}

export function read(r: HandlerRequest): Reply {
  const path = nodePath(r.store, r.client, oneArg(r.payload));
  return data(valueBytes(getNode(r.ctx, path, PERM_READ).value));
}

export function write(r: HandlerRequest): Reply {
  const nul = r.payload.indexOf(0);
  if (nul < 0) fail('EINVAL', 'WRITE needs a path');
  const path = nodePath(r.store, r.client, r.payload.toString('latin1', 0, nul));
  writeNode(r.ctx, path, r.payload.toString('latin1', nul + 1));
  return OK;
}

export function mkdir(r: HandlerRequest): Reply {
  makeDirectory(r.ctx, nodePath(r.store, r.client, oneArg(r.payload)));
  return OK;
}

export function rm(r: HandlerRequest): Reply {
  removeNode(r.ctx, nodePath(r.store, r.client, oneArg(r.payload)));
  return OK;
}

export function directory(r: HandlerRequest): Reply {
  const path = nodePath(r.store, r.client, oneArg(r.payload));
  return data(getNode(r.ctx, path, PERM_READ).children?.encode() ?? Buffer.alloc(0));
}

export function directoryPartHandler(r: HandlerRequest): Reply {
  if (nulCount(r.payload) !== 2) fail('EINVAL', 'DIRECTORY_PART takes a path and an offset');
  const [rawPath, rawOffset] = strings(r.payload);
  const record = getNode(r.ctx, nodePath(r.store, r.client, rawPath), PERM_READ);
  return data(directoryPart(record, atoi(rawOffset!) >>> 0, PAYLOAD_MAX));
}

export function getPerms(r: HandlerRequest): Reply {
  const path = nodePath(r.store, r.client, oneArg(r.payload), specialAllowed(r));
  const perms = formatPerms(getNode(r.ctx, path, PERM_READ).perms);
  return data(Buffer.from(perms.map((p) => `${p}\0`).join(''), 'latin1'));
}

export function setPerms(r: HandlerRequest): Reply {
  const count = nulCount(r.payload) - 1;
  if (count < 1) fail('EINVAL', 'SET_PERMS needs a path and permissions');
  enforce(r.store, r.client, 'node-permissions', count);
  const args = strings(r.payload);
  const perms = resolveNewPerms(r.ctx, parsePerms(args.slice(1, 1 + count)));
  const rawPath = firstString(r.payload);
  if (!r.store.compat.specialPathsAreNodes && isSpecialPath(rawPath)) {
    setSpecialPerms(r, rawPath, perms);
    return OK;
  }
  setNodePerms(r.ctx, nodePath(r.store, r.client, rawPath, specialAllowed(r)), perms);
  return OK;
}

/** 4.17: the special paths' permission lists live beside the tree and fire nothing. */
function setSpecialPerms(r: HandlerRequest, name: string, perms: ReturnType<typeof resolveNewPerms>): void {
  const current = r.store.specialPerms.get(name);
  if (!current) fail('EINVAL', `unknown special path ${name}`);
  if ((permFor(r.client, current) & (PERM_WRITE | PERM_OWNER)) !== (PERM_WRITE | PERM_OWNER)) fail('EACCES');
  r.store.specialPerms.set(name, perms);
}
