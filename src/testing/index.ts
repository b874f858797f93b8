/**
 * `xenstored-sim/testing`: daemons for tests (in process and spawned), a
 * frame-level wire client, the state as a comparable snapshot, fast-check
 * arbitraries and commands, the reference model, and the live-update property.
 */
import type { SimHandle } from './sim-handle.js';
import { snapshotOfStream, type Snapshot, type SnapshotOptions } from './snapshot.js';

export { startSim } from './start-sim.js';
export { spawnSim, simBinaryPath, type SpawnSimHandle } from './spawn-sim.js';
export type { SimHandle, SimOptions } from './sim-handle.js';
export { WireClient, type Frame, type WireClientOptions, type WireReply } from './wire-client.js';
export type { Snapshot, SnapshotConnection, SnapshotDomain, SnapshotNode, SnapshotOptions, SnapshotTransaction, SnapshotWatch } from './snapshot.js';
export { diffSnapshots } from './diff.js';
export * from './arbitraries.js';
export { describeOperation, payloadBytes, replyText, transactionId, type Operation } from './operations.js';
export { Model as ReferenceModel, type ModelOptions, type ModelReply, type Version as ModelVersion } from './model.js';
export {
  assertLiveUpdatePreserves, liveUpdateCommands, liveUpdateProperty, LiveUpdateCommand, openWorld, RequestCommand, sendOperation,
  type CommandOptions, type SimCommand, type SimWorld, type WorldOptions,
} from './live-update-property.js';

/**
 * The whole observable state, canonical and JSON-serialisable: of a
 * migration stream (any, C xenstored's included) at once, or of a running
 * daemon's handle (a promise).
 */
export function snapshot(stream: Uint8Array, options?: SnapshotOptions): Snapshot;
export function snapshot(handle: SimHandle, options?: SnapshotOptions): Promise<Snapshot>;
export function snapshot(source: Uint8Array | SimHandle, options?: SnapshotOptions): Snapshot | Promise<Snapshot> {
  return source instanceof Uint8Array ? snapshotOfStream(source, options) : source.snapshot(options);
}
