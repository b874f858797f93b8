/**
 * The XenStore wire vocabulary: message type numbers, error names, and the
 * frame limits. Every other module takes these values from here.
 */

/** Message type numbers as carried in the header's first word. */
export const MessageType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  /** 20 was RESTRICT, removed from every daemon; answered ENOSYS. */
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  INVALID: 65535,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export type MessageTypeNumber = (typeof MessageType)[MessageTypeName];

const typeNames = new Map<number, MessageTypeName>(
  Object.entries(MessageType).map(([name, num]) => [num, name as MessageTypeName]),
);
/** The name of a message type number, or `TYPE_<n>` for numbers with none. */
export function messageTypeName(type: number): string {
  return typeNames.get(type) ?? `TYPE_${type}`;
}

/**
 * Error names in the order of the protocol's error table. Clients map the
 * string back to an errno, so only these may ever be sent.
 */
export const ERROR_NAMES = [
  'EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO',
  'ENOTEMPTY', 'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM',
] as const;
export type ErrorName = (typeof ERROR_NAMES)[number];

/** Bytes in a message header: type, req_id, tx_id, len — four little-endian u32. */
export const HEADER_SIZE = 16;
/** Largest payload either side may send (XENSTORE_PAYLOAD_MAX). */
export const PAYLOAD_MAX = 4096;
/** Default of the path-max quota (XENSTORE_REL_PATH_MAX). */
export const REL_PATH_MAX = 2048;

/** Reserved domain ids. */
export const DOMID_SELF = 0x7ff0;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_ANY = 0x7ff5;
/** Highest domid a hypervisor hands to a real domain. */
export const DOMID_FIRST_RESERVED = 0x7ff0;

/** Feature bits of the ring page's server_features word. */
export const Feature = {
  RECONNECTION: 1,
  ERROR: 2,
  WATCH_DEPTH: 4,
  DOMID_ANY: 8,
} as const;
/** What C xenstored master offers (it does not offer RECONNECTION). */
export const SUPPORTED_FEATURES = Feature.ERROR | Feature.WATCH_DEPTH | Feature.DOMID_ANY;

/** The two special watch paths fired for domain life-cycle events. */
export const INTRODUCE_DOMAIN = '@introduceDomain';
export const RELEASE_DOMAIN = '@releaseDomain';

/** Payload of a successful reply that carries no data. */
export const OK_PAYLOAD = Buffer.from('OK\0', 'latin1');
