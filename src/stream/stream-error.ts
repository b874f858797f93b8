/**
 * The two ways the stream codec fails: a stream that cannot be accepted
 * (reader and consistency check) and records that cannot be written.
 */

/** Why a stream was refused; stable, for callers and tests to branch on. */
export type StreamErrorCode =
  /** Ident, version or flags wrong, or fewer than 16 header bytes. */
  | 'XS_STREAM_HEADER'
  /** A record header or body is cut off, or the stream ends without END. */
  | 'XS_STREAM_TRUNCATED'
  /** Bytes follow the END record. */
  | 'XS_STREAM_TRAILING'
  /** A record body does not follow its layout. */
  | 'XS_STREAM_MALFORMED'
  /** A version-2 record or field in a version-1 stream. */
  | 'XS_STREAM_VERSION'
  /** WATCH_DATA_EXTENDED in the broken layout C xenstored master writes. */
  | 'XS_STREAM_C_WATCH_EXT'
  /** Records are well-formed but contradict each other or the order rules. */
  | 'XS_STREAM_INCONSISTENT'
  /** xenstored-sim's checksum record does not match: bytes changed after the dump. */
  | 'XS_STREAM_CHECKSUM';

/** Where a problem was found. */
export interface StreamSite {
  /** Byte offset into the stream: the record header's, or the header field's. */
  offset: number;
  /** 0-based record index; absent for stream-header problems. */
  recordIndex?: number;
  /** Record type name (`NODE_DATA`, `TYPE_9`, …); absent when no record header was read. */
  recordType?: string;
}

function describeSite(site: StreamSite): string {
  const at = `at offset 0x${site.offset.toString(16)}`;
  if (site.recordIndex === undefined) return `stream header ${at}`;
  return `${site.recordType ?? 'record'} #${site.recordIndex} ${at}`;
}

/** A stream the codec refuses. The message names the record, its offset and the rule broken. */
export class StreamError extends Error {
  readonly offset: number;
  readonly recordIndex: number | undefined;
  readonly recordType: string | undefined;

  constructor(
    readonly code: StreamErrorCode,
    site: StreamSite,
    /** The rule broken, without the location prefix. */
    readonly reason: string,
  ) {
    super(`${describeSite(site)}: ${reason}`);
    this.name = 'StreamError';
    this.offset = site.offset;
    this.recordIndex = site.recordIndex;
    this.recordType = site.recordType;
  }
}

/** Records that cannot be written in the requested stream format. */
export class StreamEncodeError extends Error {
  constructor(
    readonly recordIndex: number,
    readonly recordType: string,
    readonly reason: string,
  ) {
    super(`${recordType} #${recordIndex}: ${reason}`);
    this.name = 'StreamEncodeError';
  }
}
