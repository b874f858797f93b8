/** The bytes of a watch event: header and `path\0token\0`, shared by every connection it goes to. */
import { HEADER_SIZE, MessageType } from '../wire/vocabulary.js';

/**
 * The last watch event encoded. One change fires the same path and token
 * at many connections (watchers that share a token), and queued bytes are
 * never modified, so they can all send the same Buffer.
 */
let lastEvent: { path: string; token: string; bytes: Buffer } | undefined;

/** Size of an encoded event; paths and tokens are latin1, one byte a character. */
export function eventSize(path: string, token: string): number {
  return HEADER_SIZE + path.length + token.length + 2;
}

export function encodedEvent(path: string, token: string): Buffer {
  if (lastEvent?.path !== path || lastEvent.token !== token) {
    const bytes = Buffer.allocUnsafe(eventSize(path, token));
    bytes.writeUInt32LE(MessageType.WATCH_EVENT, 0);
    bytes.writeUInt32LE(0, 4);
    bytes.writeUInt32LE(0, 8);
    bytes.writeUInt32LE(bytes.length - HEADER_SIZE, 12);
    const tokenAt = HEADER_SIZE + bytes.write(path, HEADER_SIZE, 'latin1');
    bytes[tokenAt] = 0;
    bytes[tokenAt + 1 + bytes.write(token, tokenAt + 1, 'latin1')] = 0;
    lastEvent = { path, token, bytes };
  }
  return lastEvent.bytes;
}
