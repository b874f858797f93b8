/** The package's public surface: the client, the daemon for in-process use, and the stream codec. */
export * from './client/index.js';
export { Daemon } from './daemon/daemon.js';
export { parseOptions, type DaemonOptions } from './daemon/options.js';
export { startDaemon } from './daemon/startup.js';
export { liveUpdateInProcess } from './liveupdate/in-process.js';
export { dumpDaemon } from './liveupdate/state-dump.js';
export { restoreDaemon } from './liveupdate/state-restore.js';
export { exportDomain, importDomain } from './liveupdate/domain-migration.js';
export { decodeStream, iterateStream } from './liveupdate/stream-reader.js';
export { encodeStream, StreamWriter } from './liveupdate/stream-writer.js';
export { checkStream } from './liveupdate/stream-check.js';
export { StreamError } from './liveupdate/stream-error.js';
export type { StreamRecord } from './liveupdate/records.js';
export { MessageType, ERROR_NAMES } from './protocol/wire.js';
