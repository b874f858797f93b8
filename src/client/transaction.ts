/**
 * A transaction opened by XsClient.startTransaction(): the node operations
 * bound to its id, plus commit() and abort(). Whatever TRANSACTION_END
 * answers, the daemon forgets the transaction; after EAGAIN start a new one
 * (XsClient.transaction() does that for you).
 */
import type { Frame } from '../protocol/frame.js';
import { MessageType } from '../wire/vocabulary.js';
import { encodeArgs } from './codec.js';
import { XsNodeOps } from './node-ops.js';

/** What a Transaction needs from its client: a way to send raw requests. */
export interface XsRequester {
  request(type: number, payload: Buffer, txId?: number, subject?: string): Promise<Frame>;
}

export class Transaction extends XsNodeOps {
  constructor(
    private readonly requester: XsRequester,
    /** The transaction id the daemon handed out. */
    readonly id: number,
  ) {
    super();
  }

  get txId(): number {
    return this.id;
  }

  request(type: number, payload: Buffer, txId: number = this.id, subject?: string): Promise<Frame> {
    return this.requester.request(type, payload, txId, subject);
  }

  /** TRANSACTION_END "T": applies the changes; rejects with XsError EAGAIN on a conflict. */
  async commit(): Promise<void> {
    await this.call(MessageType.TRANSACTION_END, encodeArgs('T'), `T (tx ${this.id})`);
  }

  /** TRANSACTION_END "F": discards the changes. */
  async abort(): Promise<void> {
    await this.call(MessageType.TRANSACTION_END, encodeArgs('F'), `F (tx ${this.id})`);
  }
}
