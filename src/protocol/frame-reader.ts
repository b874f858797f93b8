import { decodeHeader, type Frame } from './frame.js';
import { HEADER_SIZE, PAYLOAD_MAX } from '../wire/vocabulary.js';

const EMPTY = Buffer.alloc(0);

/** A copy of bytes[start, end): one new Buffer, where Buffer.from(subarray) makes two. */
function copyOf(bytes: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  bytes.copy(out, 0, start, end);
  return out;
}

/** Raised when the byte stream cannot be framed any further. */
export class FramingError extends Error {
  constructor(readonly code: 'XS_FRAME_TOO_LONG', message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

/**
 * Turns a byte stream into frames. It never touches a socket: bytes go in
 * with `push`, complete frames come out. The length limit is checked as soon
 * as a header is complete, so an oversized frame is refused after 16 bytes.
 * Once it has failed it accepts nothing more.
 */
export class FrameReader {
  private pending: Buffer = EMPTY;
  private failed: FramingError | undefined;

  constructor(private readonly maxPayload = PAYLOAD_MAX) {}

  /** Appends bytes and returns every frame they complete, in order. */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    const bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (bytes.length - offset >= HEADER_SIZE) {
      const header = decodeHeader(bytes, offset);
      if (header.len > this.maxPayload) {
        this.failed = new FramingError(
          'XS_FRAME_TOO_LONG',
          `payload length ${header.len} exceeds ${this.maxPayload}`,
        );
        this.pending = EMPTY;
        throw this.failed;
      }
      const end = offset + HEADER_SIZE + header.len;
      if (end > bytes.length) break;
      // Copy so a frame never pins the (possibly large) socket chunk it came in.
      const payload = copyOf(bytes, offset + HEADER_SIZE, end);
      frames.push({ type: header.type, reqId: header.reqId, txId: header.txId, payload });
      offset = end;
    }
    this.pending = offset === bytes.length ? EMPTY : copyOf(bytes, offset, bytes.length);
    return frames;
  }

  /** Drops partial input and any earlier failure. */
  reset(): void {
    this.pending = EMPTY;
    this.failed = undefined;
  }

  /** Bytes received that do not yet form a whole frame (for live update). */
  unconsumed(): Buffer {
    return this.pending;
  }
}
