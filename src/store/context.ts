/** What one request runs with: the store, who asks, and through which view. */
import type { Requester } from './requester.js';
import { LiveView, TransactionView, type NodeView } from './node-view.js';
import type { Store } from './store.js';
import type { StoreTransaction } from './transaction.js';

export interface OpContext {
  readonly store: Store;
  readonly client: Requester;
  readonly tx: StoreTransaction | undefined;
  readonly view: NodeView;
}

export function opContext(store: Store, client: Requester, tx: StoreTransaction | undefined): OpContext {
  const view = tx ? new TransactionView(store, client, tx) : new LiveView(store, client);
  return { store, client, tx, view };
}
