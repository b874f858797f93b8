/** The package's public surface: the client, the daemon for in-process use, and the stream codec. */
export * from './client/index.js';
export { Daemon } from './daemon/daemon.js';
export { parseOptions, type DaemonOptions } from './daemon/options.js';
export { startDaemon } from './startup/startup.js';
export { liveUpdateInProcess } from './liveupdate/in-process.js';
export { dumpDaemon } from './liveupdate/state-dump.js';
export { restoreDaemon } from './liveupdate/state-restore.js';
export { exportDomain, importDomain } from './liveupdate/domain-migration.js';
export { decodeStream, iterateStream } from './stream/stream-reader.js';
export { encodeStream, StreamWriter } from './stream/stream-writer.js';
export { checkStream } from './stream/stream-check.js';
export { StreamError } from './stream/stream-error.js';
export type { StreamRecord } from './stream/records.js';
export { MessageType, ERROR_NAMES } from './wire/vocabulary.js';
