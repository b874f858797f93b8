/**
 * What xenstored-sim adds to the migration stream, beyond what the format
 * can say: exact generation counts, transaction bookkeeping (so an open
 * transaction commits or conflicts after a live update exactly as it would
 * have without one), per-connection counters, the simulated hypervisor,
 * and where each socket descriptor went. Other readers skip these records
 * (unknown types are skipped by the format's rules); the standard records
 * before them still carry all nodes, watches and connections.
 */
import { crc32 } from 'node:zlib';
import type { PermEntry } from '../store/permissions.js';
import type { DomainState } from '../store/hypervisor.js';
import type { MatchMode } from '../store/watches.js';

/** Record types outside the format's numbering ("XSIM", "XSIN", "XSIO" in ASCII). */
export const SimRecordType = {
  STATE: 0x5853494d,
  NODE_GENERATIONS: 0x5853494e,
  /** CRC-32 of every byte before this record, written last: the format itself has no checksum. */
  CHECKSUM: 0x5853494f,
} as const;

export interface SimTouchedNode {
  path: string;
  checkGen: boolean;
  gen: number;
  oldPerms: PermEntry[] | null;
  modified: boolean;
  fire: MatchMode | null;
  /** The private copy's generation and child names (value and perms are in NODE_DATA). */
  recordGen: number | null;
  children: string[] | null;
}

export interface SimTransaction {
  connId: number;
  txId: number;
  startGen: number;
  failed: boolean;
  createdNode: boolean;
  nodeCountDelta: [number, number][];
  touched: SimTouchedNode[];
}

export interface SimConnection {
  connId: number;
  nextTransactionId: number;
  transactionsSince: number;
  ignored: boolean;
  /** Descriptor of the guest client attached to a ring connection. */
  guestFd: number | null;
  /** Descriptor of the domain's listening socket (<rundir>/domain/<id>). */
  listenerFd: number | null;
}

export interface SimDomain {
  domid: number;
  generation: number;
  introduced: boolean;
  shutdownReported: boolean;
  nodeCount: number;
  memory: number;
  port: number;
  uniqueId: string;
  features: number;
  quotas: Record<string, number>;
}

/**
 * Permission entries naming a domid over 16 bits, which NODE_DATA cannot
 * hold (no Xen domain has one, so such an entry is always stale, but
 * GET_PERMS shows it): the node (connId and txId 0 for a committed or
 * special node), then each entry's index and full domid.
 */
export interface SimWideDomids {
  connId: number;
  txId: number;
  path: string;
  entries: [number, number][];
}

export interface SimState {
  format: 1;
  generation: number;
  softMemory: number;
  hypervisor: { implicit: boolean; domains: [number, DomainState, string][]; destroyed: number[] };
  domains: SimDomain[];
  /** 4.17 keeps the special paths' permissions beside the tree. */
  specialPerms: [string, PermEntry[]][];
  connections: SimConnection[];
  transactions: SimTransaction[];
  /** Absent in streams of older builds. */
  wideDomids?: SimWideDomids[];
}

export function encodeSimState(state: SimState): Buffer {
  return Buffer.from(JSON.stringify(state), 'utf8');
}

export function decodeSimState(body: Buffer): SimState {
  const end = body.indexOf(0);
  const state = JSON.parse(body.toString('utf8', 0, end < 0 ? body.length : end)) as SimState;
  if (state.format !== 1) throw new Error(`unknown xenstored-sim state format ${String(state.format)}`);
  return state;
}

/** Generations of the committed nodes, in NODE_DATA order, as little-endian doubles. */
export function encodeGenerations(gens: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(gens.length * 8);
  for (let i = 0; i < gens.length; i++) out.writeDoubleLE(gens[i]!, i * 8);
  return out;
}

export function decodeGenerations(body: Buffer, count: number): Float64Array {
  if (body.length < count * 8) throw new Error(`generation record holds ${Math.floor(body.length / 8)} values, ${count} nodes`);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = body.readDoubleLE(i * 8);
  return out;
}

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
