/**
 * The package's public surface (the README's "API" section lists it):
 *
 *  - the client: XsClient and its transactions and errors;
 *  - a daemon in this process: startSim() gives a handle to stop it, live
 *    update it and dump its state (the same handle as in
 *    `xenstored-sim/testing`, which adds spawned daemons, snapshots,
 *    arbitraries and the live-update property);
 *  - the migration stream codec, as `stream`;
 *  - the wire vocabulary: message type numbers and error names.
 *
 * Everything else (the Daemon class, the store, the restore internals) is
 * internal and may change without notice.
 */
import { checkStream } from './stream/stream-check.js';
import { StreamError } from './stream/stream-error.js';
import { decodeStream, iterateStream } from './stream/stream-reader.js';
import { encodeStream, StreamWriter } from './stream/stream-writer.js';

export { XsClient, Transaction, XsConnectionError, XsError, XsProtocolError, isXsError, encodeArgs } from './client/index.js';
export type { ConnectOptions, DirectoryPart, TransactionOptions, WatchEvent, XsClientEvents, XsErrorCode } from './client/index.js';
export { startSim } from './testing/start-sim.js';
export type { SimHandle, SimOptions } from './testing/sim-handle.js';
export { MessageType, ERROR_NAMES } from './wire/vocabulary.js';

/** The migration stream (C xenstored's live-update format): decode, encode, check. */
export const stream = { decodeStream, iterateStream, encodeStream, StreamWriter, checkStream, StreamError } as const;
export type { StreamRecord, StreamFormat, DecodedRecord } from './stream/records.js';
export type { DecodedStream } from './stream/stream-reader.js';
