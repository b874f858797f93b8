/** Public surface of the XenStore wire-protocol client. */
export { XsClient } from './client.js';
export type { ConnectOptions, TransactionOptions, WatchEvent, XsClientEvents } from './client.js';
export { Transaction } from './transaction.js';
export type { XsRequester } from './transaction.js';
export { XsNodeOps } from './node-ops.js';
export type { DirectoryPart } from './node-ops.js';
export { XsConnectionError, XsError, XsProtocolError, isXsError } from './errors.js';
export type { XsErrorCode } from './errors.js';
export { encodeArgs } from './codec.js';
