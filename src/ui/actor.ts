/**
 * The page's hands: every action goes to the daemon as a real client
 * request, dom0's over the main socket and a guest's over that domain's
 * own socket, so the page gets exactly the errors such a client gets
 * (EACCES, quota errors, EBUSY when the guest already has a client).
 */
import path from 'node:path';
import { XsClient } from '../client/client.js';
import { XsError } from '../client/errors.js';
import type { XsNodeOps } from '../client/node-ops.js';
import { Transaction } from '../client/transaction.js';

export interface NodeAction {
  /** The domain acting; 0 is dom0 (the main socket). */
  as: number;
  op: 'read' | 'write' | 'mkdir' | 'rm' | 'set-perms' | 'tx-start' | 'tx-commit' | 'tx-abort';
  path?: string;
  value?: string;
  perms?: string[];
  /** Open transaction to act in (an id from tx-start of the same domain). */
  tx?: number;
}

export type DomainAction = { op: 'introduce' | 'shutdown' | 'crash' | 'destroy' | 'create'; domid: number };

/** An answer as a client sees it: a value, or the daemon's error name. */
export type Outcome = { ok: true; value?: string | number } | { ok: false; error: string; message: string };

/** Event channel port the page's introductions announce (any value does). */
const INTRODUCE_EVTCHN = 1;

export class Actor {
  private readonly clients = new Map<number, Promise<XsClient>>();
  private readonly transactions = new Map<string, Transaction>();

  constructor(private readonly socketPath: string, private readonly domainDir: string) {}

  /** The client acting as `domid`, connected on first use and again after a loss. */
  private client(domid: number): Promise<XsClient> {
    let client = this.clients.get(domid);
    if (!client) {
      const socket = domid === 0 ? this.socketPath : path.join(this.domainDir, String(domid));
      client = XsClient.connect(socket, { retryMs: 0 });
      this.clients.set(domid, client);
      client.then(
        (c) => c.once('close', () => this.forget(domid, client!)),
        () => this.forget(domid, client!),
      );
    }
    return client;
  }

  private forget(domid: number, client: Promise<XsClient>): void {
    if (this.clients.get(domid) !== client) return;
    this.clients.delete(domid);
    for (const key of [...this.transactions.keys()]) if (key.startsWith(`${domid}:`)) this.transactions.delete(key);
  }

  private async target(as: number, tx: number | undefined): Promise<XsNodeOps> {
    if (tx === undefined) return this.client(as);
    const transaction = this.transactions.get(`${as}:${tx}`);
    if (!transaction) throw new XsError('ENOENT', 0, undefined, `no open transaction ${tx} of domain ${as} made here`);
    return transaction;
  }

  async node(action: NodeAction): Promise<Outcome> {
    return outcome(async () => {
      const p = action.path ?? '';
      switch (action.op) {
        case 'read': return (await (await this.target(action.as, action.tx)).read(p)).toString('latin1');
        case 'write': return void (await (await this.target(action.as, action.tx)).write(p, Buffer.from(action.value ?? '', 'utf8')));
        case 'mkdir': return void (await (await this.target(action.as, action.tx)).mkdir(p));
        case 'rm': return void (await (await this.target(action.as, action.tx)).rm(p));
        case 'set-perms': return void (await (await this.target(action.as, action.tx)).setPerms(p, action.perms ?? []));
        case 'tx-start': {
          const tx = await (await this.client(action.as)).startTransaction();
          this.transactions.set(`${action.as}:${tx.txId}`, tx);
          return tx.txId;
        }
        case 'tx-commit': case 'tx-abort': {
          const tx = (await this.target(action.as, action.tx ?? -1)) as Transaction;
          this.transactions.delete(`${action.as}:${tx.txId}`);
          return void (await (action.op === 'tx-commit' ? tx.commit() : tx.abort()));
        }
      }
    });
  }

  /** What a toolstack and the hypervisor do to a domain. */
  async domain(action: DomainAction): Promise<Outcome> {
    return outcome(async () => {
      const dom0 = await this.client(0);
      const id = String(action.domid);
      if (action.op !== 'introduce') return (await dom0.control('domain', action.op, id)).toString('latin1').replace(/\0$/, '');
      const home = `/local/domain/${id}`;
      await dom0.mkdir(home);
      await dom0.setPerms(home, [`n${id}`, 'r0']);
      await dom0.introduce(action.domid, 0, INTRODUCE_EVTCHN);
      return undefined;
    });
  }

  /** A CONTROL command from dom0; the reply text. */
  async control(...args: string[]): Promise<string> {
    const [command = '', ...rest] = args;
    return (await (await this.client(0)).control(command, ...rest)).toString('latin1').replace(/\0$/, '');
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.then((client) => client.close(), () => undefined)));
  }
}

async function outcome(work: () => Promise<string | number | undefined>): Promise<Outcome> {
  try {
    const value = await work();
    return value === undefined ? { ok: true } : { ok: true, value };
  } catch (e) {
    const error = e instanceof XsError ? e.code : (e as { code?: string }).code ?? 'ERROR';
    return { ok: false, error: String(error), message: (e as Error).message };
  }
}
