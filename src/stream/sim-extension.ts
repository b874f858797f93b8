/**
 * What xenstored-sim adds to the migration stream, beyond what the format
 * can say: exact generation counts, the store's saved domains and clients
 * whole (transaction bookkeeping included, so an open transaction commits
 * or conflicts after a live update exactly as it would have without one),
 * the simulated hypervisor, and where each socket descriptor went. Other
 * readers skip these records (unknown types are skipped by the format's
 * rules); the standard records before them still carry all nodes, watches
 * and connections.
 */
import type { SavedRequester } from '../store/requester.js';
import type { SavedDomain } from '../store/domains.js';
import type { SavedHypervisor } from '../store/hypervisor.js';
import type { PermEntry } from '../store/permissions.js';

/** Record types outside the format's numbering ("XSIM", "XSIN", "XSIO" in ASCII). */
export const SimRecordType = {
  STATE: 0x5853494d,
  NODE_GENERATIONS: 0x5853494e,
  /** CRC-32 of every byte before this record, written last: the format itself has no checksum. */
  CHECKSUM: 0x5853494f,
} as const;

/** A connection: the store's saved client whole, and where its descriptors went. */
export interface SimConnection {
  /** The CONNECTION_DATA record this one completes. */
  connId: number;
  client: SavedRequester;
  /** Descriptor of the guest client attached to a ring connection. */
  guestFd: number | null;
  /** Descriptor of the domain's listening socket (<rundir>/domain/<id>). */
  listenerFd: number | null;
}

/**
 * A guest client waiting for its domain's ring when the stream was written
 * (it has no connection yet, so no standard record).
 */
export interface SimParkedGuest {
  domid: number;
  /** Descriptor of its socket, when the sockets outlive the writer. */
  fd: number | null;
  /** How long it had waited. */
  waitedMs: number;
  /** Bytes of its first request already read, base64. */
  first: string;
}

/**
 * The store's saved values but the nodes (those are in NODE_DATA), whole:
 * a field added to a saved value travels without a change here.
 */
export interface SimState {
  format: 2;
  generation: number;
  softMemory: number;
  hypervisor: SavedHypervisor;
  domains: SavedDomain[];
  /** 4.17 keeps the special paths' permissions beside the tree. */
  specialPerms: [string, readonly PermEntry[]][];
  connections: SimConnection[];
  /**
   * Committed and special nodes whose permission entries name a domid over
   * 16 bits, which NODE_DATA cannot hold (no Xen domain has one, so such an
   * entry is always stale, but GET_PERMS shows it): each entry's index and
   * full domid. Transactions' copies need none: they travel whole above.
   */
  wideDomids: { path: string; entries: [number, number][] }[];
  /** Waiting guest clients, each domain's in queue order (absent in streams from before they were kept). */
  parked?: SimParkedGuest[];
}

/** JSON has no bigint: one is written as {"bigint": "<decimal>"}. */
const BIGINT_KEY = 'bigint';

export function encodeSimState(state: SimState): Buffer {
  return Buffer.from(JSON.stringify(state, (_key, value: unknown) => (typeof value === 'bigint' ? { [BIGINT_KEY]: value.toString() } : value)), 'utf8');
}

/**
 * The state as written; its values are checked where they are loaded (the
 * store's import refuses what it could not have produced itself).
 */
export function decodeSimState(body: Buffer): SimState {
  const end = body.indexOf(0);
  const text = body.toString('utf8', 0, end < 0 ? body.length : end);
  const state = JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && Object.keys(value).length === 1 && typeof (value as Record<string, unknown>)[BIGINT_KEY] === 'string') {
      return BigInt((value as Record<string, string>)[BIGINT_KEY]!);
    }
    return value;
  }) as SimState;
  if (state?.format !== 2) throw new Error(`unknown xenstored-sim state format ${String(state?.format)}`);
  return state;
}

/** Whether this machine stores a double as the stream does (little-endian): then a copy converts. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/**
 * Generations of the committed nodes, in NODE_DATA order, as little-endian
 * doubles. One copy of the whole array where the host's byte order allows,
 * not a call per node: this runs inside a live update's pause, before the
 * code is warm.
 */
export function encodeGenerations(gens: readonly number[]): Buffer {
  if (HOST_LITTLE_ENDIAN) {
    const doubles = Float64Array.from(gens);
    return Buffer.from(doubles.buffer, doubles.byteOffset, doubles.byteLength);
  }
  const out = Buffer.allocUnsafe(gens.length * 8);
  for (let i = 0; i < gens.length; i++) out.writeDoubleLE(gens[i]!, i * 8);
  return out;
}

export function decodeGenerations(body: Buffer, count: number): Float64Array {
  if (body.length < count * 8) throw new Error(`generation record holds ${Math.floor(body.length / 8)} values, ${count} nodes`);
  if (HOST_LITTLE_ENDIAN) return new Float64Array(Uint8Array.prototype.slice.call(body, 0, count * 8).buffer);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = body.readDoubleLE(i * 8);
  return out;
}

/** node:zlib is loaded at first use: a daemon start that restores no stream does not pay for it. */
const crc32 = (data: Buffer): number => process.getBuiltinModule('node:zlib').crc32(data);

/** The CHECKSUM record's body for a stream whose bytes so far are `before`. */
export function encodeChecksum(before: Buffer): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(crc32(before), 0);
  return out;
}

/** Whether a CHECKSUM record's body matches the bytes before it. */
export function checksumMatches(body: Buffer, before: Buffer): boolean {
  return body.length >= 4 && body.readUInt32LE(0) === crc32(before);
}
