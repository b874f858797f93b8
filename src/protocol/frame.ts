import { HEADER_SIZE } from '../wire/vocabulary.js';

/** One message as it travels: the four header words and the payload. */
export interface Frame {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** Encodes a frame: 16-byte little-endian header followed by the payload. */
export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + frame.payload.length);
  out.writeUInt32LE(frame.type >>> 0, 0);
  out.writeUInt32LE(frame.reqId >>> 0, 4);
  out.writeUInt32LE(frame.txId >>> 0, 8);
  out.writeUInt32LE(frame.payload.length, 12);
  frame.payload.copy(out, HEADER_SIZE);
  return out;
}

/** Decodes the header words of a complete frame held in `bytes` at `offset`. */
export function decodeHeader(bytes: Buffer, offset = 0): Omit<Frame, 'payload'> & { len: number } {
  return {
    type: bytes.readUInt32LE(offset),
    reqId: bytes.readUInt32LE(offset + 4),
    txId: bytes.readUInt32LE(offset + 8),
    len: bytes.readUInt32LE(offset + 12),
  };
}
