/** TRANSACTION_START and TRANSACTION_END. */
import { fail } from '../../store/errors.js';
import { endTransaction, startTransaction } from '../../store/transaction-ops.js';
import type { HandlerRequest } from '../handler.js';
import { cString, oneArg } from '../payload.js';
import { data, OK, type Reply } from '../reply.js';

export function transactionStart(r: HandlerRequest): Reply {
  if (r.ctx.tx) fail('EBUSY', 'nested transaction');
  return data(cString(String(startTransaction(r.store, r.client).id)));
}

export function transactionEnd(r: HandlerRequest): Reply {
  const arg = oneArg(r.payload);
  if (arg !== 'T' && arg !== 'F') fail('EINVAL', 'TRANSACTION_END takes T or F');
  if (!r.ctx.tx) fail('ENOENT', 'no transaction');
  endTransaction(r.store, r.client, r.ctx.tx, arg === 'T');
  return OK;
}
