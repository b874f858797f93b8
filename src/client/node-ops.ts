/**
 * The node operations (READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART,
 * GET_PERMS, SET_PERMS) shared by XsClient (tx id 0) and Transaction (its
 * own id). Subclasses only say how a raw request is sent.
 */
import type { Frame } from '../protocol/frame.js';
import { MessageType, PAYLOAD_MAX } from '../wire/vocabulary.js';
import { decodeNames, decodeStrings, encodeArgs } from './codec.js';
import { XsError, XsProtocolError } from './errors.js';

/** One slice of a child list, as returned by DIRECTORY_PART. */
export interface DirectoryPart {
  /** The node's generation count at the time of the reply. */
  generation: bigint;
  /** Child names in this slice, in the daemon's order. */
  names: string[];
  /** True when the slice reaches the end of the child list. */
  complete: boolean;
  /** Byte offset to ask for next (offset + bytes of the names in this slice). */
  nextOffset: number;
}

/** How often directory() restarts its DIRECTORY_PART walk before giving up. */
const MAX_DIRECTORY_RESTARTS = 1000;

export abstract class XsNodeOps {
  /** Transaction id carried by requests sent through this object (0 = none). */
  abstract readonly txId: number;

  /**
   * Sends one raw request and resolves with the reply frame, whatever its
   * type — ERROR replies are returned, not thrown. `txId` defaults to this
   * object's transaction id. `subject` only goes into error messages.
   */
  abstract request(type: number, payload: Buffer, txId?: number, subject?: string): Promise<Frame>;

  /**
   * Sends a request and returns the reply payload; an ERROR reply becomes
   * an XsError, a reply of any type other than the request's an
   * XsProtocolError. `subject` (usually the path) only goes into messages.
   */
  protected async call(type: number, payload: Buffer, subject?: string): Promise<Buffer> {
    if (payload.length > PAYLOAD_MAX) {
      // The daemon would drop the whole connection; refuse like libxenstore.
      throw new XsError('E2BIG', type, subject, `payload of ${payload.length} bytes exceeds ${PAYLOAD_MAX}; not sent`);
    }
    const reply = await this.request(type, payload, this.txId, subject);
    if (reply.type === MessageType.ERROR) {
      const nul = reply.payload.indexOf(0);
      throw new XsError(reply.payload.toString('latin1', 0, nul < 0 ? reply.payload.length : nul), type, subject);
    }
    if (reply.type !== type) {
      throw new XsProtocolError(`reply to request type ${type} (req ${reply.reqId}) has type ${reply.type}`);
    }
    return reply.payload;
  }

  /** READ: the node's value, raw bytes. */
  async read(path: string): Promise<Buffer> {
    return this.call(MessageType.READ, encodeArgs(path), path);
  }

  /** READ, decoded as text (UTF-8 by default). */
  async readString(path: string, encoding: BufferEncoding = 'utf8'): Promise<string> {
    return (await this.read(path)).toString(encoding);
  }

  /** WRITE: creates the node (and missing parents) or replaces its value. */
  async write(path: string, value: string | Buffer): Promise<void> {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    await this.call(MessageType.WRITE, Buffer.concat([encodeArgs(path), bytes]), path);
  }

  /** MKDIR: creates the node with an empty value unless it exists. */
  async mkdir(path: string): Promise<void> {
    await this.call(MessageType.MKDIR, encodeArgs(path), path);
  }

  /** RM: removes the node and its whole subtree. */
  async rm(path: string): Promise<void> {
    await this.call(MessageType.RM, encodeArgs(path), path);
  }

  /**
   * DIRECTORY: the child names, in the daemon's order. When the list does
   * not fit in one reply (E2BIG) it is fetched with DIRECTORY_PART, and the
   * walk starts over whenever the node's generation changes between slices.
   */
  async directory(path: string): Promise<string[]> {
    try {
      return decodeNames(await this.call(MessageType.DIRECTORY, encodeArgs(path), path));
    } catch (e) {
      if (!(e instanceof XsError && e.code === 'E2BIG')) throw e;
    }
    try {
      return await this.directoryByParts(path);
    } catch (e) {
      // A daemon without DIRECTORY_PART (oxenstored 4.17): the list is just too big.
      if (e instanceof XsError && e.code === 'ENOSYS') {
        throw new XsError('E2BIG', MessageType.DIRECTORY, path, 'and DIRECTORY_PART is not supported');
      }
      throw e;
    }
  }

  /** DIRECTORY_PART: one slice of the child list starting at byte `offset`. */
  async directoryPart(path: string, offset: number): Promise<DirectoryPart> {
    const reply = await this.call(MessageType.DIRECTORY_PART, encodeArgs(path, String(offset)), path);
    const nul = reply.indexOf(0);
    const genText = reply.toString('latin1', 0, nul < 0 ? reply.length : nul);
    if (nul < 0 || !/^\d+$/.test(genText)) {
      throw new XsProtocolError(`DIRECTORY_PART ${JSON.stringify(path)}: reply does not start with a generation: ${JSON.stringify(reply.toString('latin1'))}`);
    }
    const rest = reply.subarray(nul + 1);
    // The last slice carries one extra NUL: `name|name||`, or just `|`.
    const complete = rest.length > 0 && rest[rest.length - 1] === 0 && (rest.length === 1 || rest[rest.length - 2] === 0);
    const names = complete ? rest.subarray(0, rest.length - 1) : rest;
    if (names.length > 0 && names[names.length - 1] !== 0) {
      throw new XsProtocolError(`DIRECTORY_PART ${JSON.stringify(path)}: slice does not end with a NUL`);
    }
    return { generation: BigInt(genText), names: decodeNames(names), complete, nextOffset: offset + names.length };
  }

  private async directoryByParts(path: string): Promise<string[]> {
    for (let restarts = 0; restarts <= MAX_DIRECTORY_RESTARTS; restarts++) {
      const names: string[] = [];
      let generation: bigint | undefined;
      let offset = 0;
      let changed = false;
      for (;;) {
        const part = await this.directoryPart(path, offset);
        if (generation === undefined) generation = part.generation;
        else if (part.generation !== generation) {
          changed = true;
          break;
        }
        names.push(...part.names);
        if (part.complete) break;
        if (part.nextOffset === offset) {
          throw new XsProtocolError(`DIRECTORY_PART ${JSON.stringify(path)}: empty slice at offset ${offset} that is not the last`);
        }
        offset = part.nextOffset;
      }
      if (!changed) return names;
    }
    throw new XsProtocolError(`DIRECTORY ${JSON.stringify(path)}: the child list kept changing during ${MAX_DIRECTORY_RESTARTS} DIRECTORY_PART walks`);
  }

  /** GET_PERMS: the permission list in wire form, owner first (e.g. ['n0', 'r5']). */
  async getPerms(path: string): Promise<string[]> {
    return decodeStrings(await this.call(MessageType.GET_PERMS, encodeArgs(path), path));
  }

  /** SET_PERMS: replaces the permission list (wire form, owner first). */
  async setPerms(path: string, perms: readonly string[]): Promise<void> {
    await this.call(MessageType.SET_PERMS, encodeArgs(path, ...perms), path);
  }
}
