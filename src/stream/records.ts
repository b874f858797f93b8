/**
 * Vocabulary of the XenStore migration / live-update stream: record type
 * numbers, header constants, the byte layout of every record's fixed part,
 * and one TypeScript shape per record. The reader and the writer both take
 * their numbers from here, so each value is written exactly once.
 */

/** Record type numbers, as carried in the first word of a record header. */
export const RecordType = {
  END: 0,
  GLOBAL_DATA: 1,
  CONNECTION_DATA: 2,
  WATCH_DATA: 3,
  TRANSACTION_DATA: 4,
  NODE_DATA: 5,
  GLOBAL_QUOTA_DATA: 6,
  DOMAIN_DATA: 7,
  /** Valid in version-2 streams only. */
  WATCH_DATA_EXTENDED: 8,
} as const;
export type RecordTypeName = keyof typeof RecordType;

const typeNames = new Map<number, RecordTypeName>(
  Object.entries(RecordType).map(([name, num]) => [num, name as RecordTypeName]),
);
/** The name of a record type number, or `TYPE_<n>` for numbers with none. */
export function recordTypeName(type: number): string {
  return typeNames.get(type) ?? `TYPE_${type}`;
}

/** The 8 ASCII bytes every stream starts with (no NUL). */
export const STREAM_IDENT = Buffer.from('xenstore', 'latin1');
/** Stream versions this codec reads and writes. */
export const STREAM_VERSIONS = [1, 2] as const;
export type StreamVersion = (typeof STREAM_VERSIONS)[number];
/** Header flag bit 0: everything after the header is big-endian. Bits 1–31 are reserved. */
export const FLAG_BIG_ENDIAN = 0x1;

/** Stream header: ident[8], version u32 BE, flags u32 BE. */
export const StreamHeaderLayout = { ident: 0, version: 8, flags: 12, size: 16 } as const;
/** Record header: type u32, len u32, in the stream's endianness. */
export const RecordHeaderLayout = { type: 0, len: 4, size: 8 } as const;
/** Every record starts on a multiple of this, relative to the start of the stream. */
export const RECORD_ALIGN = 8;

/** Rounds `n` up to the record alignment. */
export function alignRecord(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/*
 * Fixed-part layouts: byte offsets relative to the start of the record body.
 * `size` is the length of the fixed part; variable data follows it.
 */
export const GlobalLayout = { socketFd: 0, evtchnFd: 4, size: 8 } as const;
export const ConnectionLayout = {
  connId: 0, connType: 4, fields: 6,
  /* conn-spec, ring */ domid: 8, tdomid: 10, evtchn: 12,
  /* conn-spec, socket */ socketFd: 8, socketPad: 12,
  inDataLen: 16, outRespLen: 18, outDataLen: 20, size: 24,
  /** The unique id follows the data, once padded to the record alignment. */
  uniqueIdSize: 8,
} as const;
export const WatchLayout = { connId: 0, pathLen: 4, tokenLen: 6, size: 8 } as const;
export const WatchExtendedLayout = { connId: 0, pathLen: 4, tokenLen: 6, depth: 8, pad: 10, size: 12 } as const;
export const TransactionLayout = { connId: 0, txId: 4, size: 8 } as const;
export const NodeLayout = {
  connId: 0, txId: 4, pathLen: 8, valueLen: 10, access: 12, permCount: 14, size: 16,
} as const;
/** One permission specifier inside NODE_DATA. */
export const PermLayout = { perm: 0, flags: 1, domid: 2, size: 4 } as const;
export const GlobalQuotaLayout = { domainCount: 0, globalCount: 2, size: 4 } as const;
export const DomainLayout = { domid: 0, quotaCount: 2, features: 4, size: 8 } as const;
/** Both quota records continue with one u32 value per quota, then the NUL-terminated names in the same order. */
export const QUOTA_VALUE_SIZE = 4;

/** conn-type values. */
export const ConnTypeCode = { ring: 0, socket: 1 } as const;
export type ConnType = keyof typeof ConnTypeCode;
/** CONNECTION_DATA `fields` bit 0: a unique id follows the padded data. */
export const CONN_FIELD_UNIQUE_ID = 0x1;
/** Permission specifier flag: the entry is stale and ignored in checks. */
export const PERM_FLAG_STALE = 0x1;
/** NODE_DATA access bits of a pending node; 0 means deleted in the transaction. */
export const NodeAccess = { DELETED: 0, READ: 0x1, WRITTEN: 0x2 } as const;
export const NODE_ACCESS_MASK = NodeAccess.READ | NodeAccess.WRITTEN;
/** WATCH_DATA_EXTENDED depth value meaning "no depth limit". */
export const WATCH_DEPTH_UNLIMITED = 0xffff;

/** Permission letters as stored (ASCII): none, read, write, both. */
export const PERM_CHARS = ['n', 'r', 'w', 'b'] as const;
export type PermChar = (typeof PERM_CHARS)[number];

export interface GlobalRecord {
  kind: 'global';
  /** Listening socket fd, -1 if none. */
  socketFd: number;
  /** Event-channel device fd kept open across exec. */
  evtchnFd: number;
}

interface ConnectionCommon {
  kind: 'connection';
  /** Stream-local id (non-zero) that watch/transaction/node records refer to. */
  connId: number;
  /** Received bytes not yet processed. */
  inData: Buffer;
  /** Length of the partially sent response at the front of `outData` (0 = none). */
  outRespLen: number;
  /** Bytes queued for sending. */
  outData: Buffer;
  /** Domain incarnation id; present iff `fields` bit 0 is set. */
  uniqueId?: bigint;
}
export interface RingConnectionRecord extends ConnectionCommon {
  connType: 'ring';
  domid: number;
  /** Target domain, or DOMID_INVALID (0x7ff4) for none. */
  tdomid: number;
  /** xenstored's local event-channel port. */
  evtchn: number;
}
export interface SocketConnectionRecord extends ConnectionCommon {
  connType: 'socket';
  socketFd: number;
}
export type ConnectionRecord = RingConnectionRecord | SocketConnectionRecord;

/**
 * A watch. Without `depth` it is a WATCH_DATA record (valid in every version);
 * with `depth` it is a WATCH_DATA_EXTENDED record (version 2 only), where
 * `'unlimited'` stands for the on-wire 0xffff.
 */
export interface WatchRecord {
  kind: 'watch';
  connId: number;
  /** Exactly as the client gave it: relative paths stay relative. */
  path: string;
  token: string;
  depth?: number | 'unlimited';
}

export interface TransactionRecord {
  kind: 'transaction';
  connId: number;
  txId: number;
}

export interface NodePerm {
  perm: PermChar;
  stale: boolean;
  domid: number;
}

export interface NodeRecord {
  kind: 'node';
  /** 0 for a committed node, else the connection owning the transaction. */
  connId: number;
  txId: number;
  path: string;
  value: Buffer;
  /** NodeAccess bits; meaningful for pending nodes only. */
  access: number;
  /** The first entry is the owner. */
  perms: NodePerm[];
}

export interface QuotaEntry {
  name: string;
  /** 0 means unlimited. */
  value: number;
}

export interface GlobalQuotaRecord {
  kind: 'globalQuota';
  /** Defaults applied to each domain. */
  domainQuotas: QuotaEntry[];
  /** Limits that apply to the daemon as a whole. */
  globalQuotas: QuotaEntry[];
}

export interface DomainRecord {
  kind: 'domain';
  domid: number;
  /** Ring-page feature word; must be 0 in version-1 streams. */
  features: number;
  quotas: QuotaEntry[];
}

/** A record whose type this codec does not know; appliers skip it. */
export interface UnknownRecord {
  kind: 'unknown';
  type: number;
  /** The body as `len` says, padding included. */
  body: Buffer;
}

export type StreamRecord =
  | GlobalRecord
  | ConnectionRecord
  | WatchRecord
  | TransactionRecord
  | NodeRecord
  | GlobalQuotaRecord
  | DomainRecord
  | UnknownRecord;

/** The record type number a record is written as. */
export function recordTypeOf(record: StreamRecord): number {
  switch (record.kind) {
    case 'global': return RecordType.GLOBAL_DATA;
    case 'connection': return RecordType.CONNECTION_DATA;
    case 'watch': return record.depth === undefined ? RecordType.WATCH_DATA : RecordType.WATCH_DATA_EXTENDED;
    case 'transaction': return RecordType.TRANSACTION_DATA;
    case 'node': return RecordType.NODE_DATA;
    case 'globalQuota': return RecordType.GLOBAL_QUOTA_DATA;
    case 'domain': return RecordType.DOMAIN_DATA;
    case 'unknown': return record.type;
  }
}

/** Stream-wide settings carried in the header. */
export interface StreamFormat {
  version: StreamVersion;
  bigEndian: boolean;
}

/** A record as found in a stream: where it starts and its position among the records. */
export interface DecodedRecord {
  record: StreamRecord;
  /** Byte offset of the record header from the start of the stream. */
  offset: number;
  /** 0-based position among the stream's records. */
  index: number;
}
