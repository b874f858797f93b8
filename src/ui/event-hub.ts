/**
 * The page's push channel (Server-Sent Events): trace lines as they happen
 * and a `changed` note whenever the store or the connections moved, sent
 * in batches every TICK_MS so a busy daemon does not flood the browser.
 */
import type { ServerResponse } from 'node:http';

/** How often pending lines and changes go out (well inside the page's 100 ms). */
const TICK_MS = 40;
/** Lines kept for a page that connects (or reconnects after a live update). */
const BACKLOG_LINES = 1000;
/** Most lines in one batch: a flood is cut, and the page says so. */
const BATCH_LINES = 2000;
/** A comment now and then keeps proxies and idle timers from closing the stream. */
const KEEPALIVE_MS = 15_000;

export interface HubSource {
  /** Changes whenever anything the page shows changes. */
  signature(): string;
  /** Sent first on every (re)connection. */
  hello(): unknown;
}

export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly backlog: string[] = [];
  private pending: string[] = [];
  private dropped = 0;
  private lastSignature = '';
  private readonly ticker: NodeJS.Timeout;
  private readonly keepalive: NodeJS.Timeout;

  constructor(private readonly source: HubSource) {
    this.ticker = setInterval(() => this.tick(), TICK_MS).unref();
    this.keepalive = setInterval(() => this.broadcast(': keepalive\n\n'), KEEPALIVE_MS).unref();
  }

  /** A trace line from the daemon. */
  line(text: string): void {
    this.backlog.push(text);
    if (this.backlog.length > BACKLOG_LINES) this.backlog.splice(0, this.backlog.length - BACKLOG_LINES);
    if (this.clients.size === 0) return;
    if (this.pending.length < BATCH_LINES) this.pending.push(text);
    else this.dropped++;
  }

  /** Something happened the page should hear about now (a live update starting). */
  notice(name: string, data: unknown): void {
    this.broadcast(message(name, data));
  }

  subscribe(response: ServerResponse): void {
    // Not chunked: the stream ends where the connection does, so the cut a
    // live update makes (the re-exec closes it) is a normal end to the
    // browser, which reconnects, to the new image, without an error.
    response.useChunkedEncodingByDefault = false;
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'close' });
    // EventSource reconnects by itself after this long, e.g. across a live update.
    response.write('retry: 300\n\n');
    response.write(message('hello', this.source.hello()));
    response.write(message('lines', { lines: this.backlog, dropped: 0 }));
    this.clients.add(response);
    response.on('close', () => this.clients.delete(response));
  }

  private tick(): void {
    if (this.clients.size === 0) return;
    if (this.pending.length > 0) {
      this.broadcast(message('lines', { lines: this.pending, dropped: this.dropped }));
      this.pending = [];
      this.dropped = 0;
    }
    const signature = this.source.signature();
    if (signature !== this.lastSignature) {
      this.lastSignature = signature;
      this.broadcast(message('changed', { signature }));
    }
  }

  private broadcast(text: string): void {
    for (const client of this.clients) client.write(text);
  }

  close(): void {
    clearInterval(this.ticker);
    clearInterval(this.keepalive);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}

function message(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
