/**
 * `--ui`: the sandbox page, served by the daemon's own process. Loaded
 * only when asked for, so a plain daemon's start-up does not pay for it.
 * The listening socket and the token survive a live update: the new image
 * finds the socket among the kept descriptors and the token in its
 * environment, and the page's event stream simply reconnects.
 */
import type http from 'node:http';
import type { Daemon } from '../daemon/daemon.js';
import { adoptListeningSocket } from '../liveupdate/adopt-fds.js';
import { Actor } from './actor.js';
import { EventHub } from './event-hub.js';
import { allowedHosts, newToken } from './guard.js';
import { createServer } from './http-server.js';
import type { RouteContext } from './routes.js';

/** Environment: the page's token, so the image after a live update keeps it. */
const TOKEN_ENV = 'XENSTORED_SIM_UI_TOKEN';
const LISTENER_NAME = 'ui';

export interface Sandbox {
  url: string;
  close(): Promise<void>;
}

/** Changes whenever the tree, the connections or the domains change. */
function signature(daemon: Daemon): string {
  let watches = 0;
  let touched = 0;
  for (const { client } of daemon.connections.values()) {
    watches += client.watches.length;
    for (const tx of client.transactions.values()) touched += tx.touched.size + 1;
  }
  const states = daemon.store.hypervisor.describe().domains.map(([id, state]) => `${id}${state}`).join();
  return `${daemon.store.generation}/${daemon.connections.size}/${watches}/${touched}/${states}`;
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Where a browser on this machine reaches a server bound to `host`. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startSandbox(daemon: Daemon, address: { host: string; port: number }, log: (line: string) => void): Promise<Sandbox> {
  const token = process.env[TOKEN_ENV] ?? newToken();
  process.env[TOKEN_ENV] = token;
  const actor = new Actor(daemon.options.socketPath, daemon.domainDir);
  const hub = new EventHub({ signature: () => signature(daemon), hello: () => ({ pid: process.pid }) });
  daemon.traceListeners.add((line) => hub.line(line));
  const context: RouteContext = {
    daemon, actor, hub,
    liveUpdate: async () => {
      const opened = await actor.control('live-update', '-f', process.argv[1]!);
      if (opened !== 'OK') return opened;
      return actor.control('live-update', '-s');
    },
  };
  const hosts = new Set<string>(); // filled once the port is known
  const server = createServer({ token, hosts, hub, context, log });
  const inherited = daemon.inheritedListeners.get(LISTENER_NAME);
  if (inherited !== undefined) await adoptListeningSocket(inherited, server);
  else await listen(server, address.host, address.port);
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : address.port;
  for (const host of allowedHosts(address.host, port)) hosts.add(host);
  daemon.keptListeners.set(LISTENER_NAME, server);
  return {
    url: `http://${urlHost(address.host)}:${port}/?token=${token}`,
    close: async () => {
      hub.close();
      await actor.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
