/**
 * The sandbox page's HTTP server (plain node:http): the guard first, then
 * the page's three files, the event stream, or an API route. No request,
 * however malformed, can take the daemon down: every failure is an answer.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { EventHub } from './event-hub.js';
import { refusal } from './guard.js';
import { BadRequest, route, type Answer, type RouteContext } from './routes.js';

/** The page's files, shipped in the package beside dist/ and src/. */
const ASSETS = new URL('../../assets/sandbox/', import.meta.url);
const STATIC: Record<string, string> = {
  '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
/** Largest request body (an uploaded migration stream). */
const BODY_MAX = 64 << 20;

export interface ServerSetup {
  token: string;
  hosts: Set<string>;
  hub: EventHub;
  context: RouteContext;
  log(line: string): void;
}

function send(response: http.ServerResponse, answer: Answer): void {
  const headers: http.OutgoingHttpHeaders = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
  if ('json' in answer) {
    response.writeHead(answer.status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(answer.json));
    return;
  }
  if (answer.filename) headers['content-disposition'] = `attachment; filename="${answer.filename}"`;
  response.writeHead(answer.status, { ...headers, 'content-type': answer.type }).end(answer.bytes);
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_MAX) {
        reject(new BadRequest(`request body over ${BODY_MAX} bytes`));
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function staticFile(name: string, token: string): Answer {
  let bytes = fs.readFileSync(new URL(name, ASSETS));
  // The page's own links carry the token, so the browser sends it with every request.
  if (name === 'index.html') bytes = Buffer.from(bytes.toString('utf8').replaceAll('{{TOKEN}}', token));
  return { status: 200, bytes, type: TYPES[name.slice(name.lastIndexOf('.') + 1)]! };
}

async function handle(setup: ServerSetup, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  let url: URL;
  try {
    url = new URL(request.url ?? '/', 'http://sandbox');
  } catch {
    send(response, { status: 400, json: { error: 'EINVAL', message: 'bad request URL' } });
    return;
  }
  const refused = refusal(request, url, setup.token, setup.hosts);
  if (refused) {
    send(response, { status: refused.status, json: { error: 'EACCES', message: refused.reason } });
    return;
  }
  if (request.method === 'GET' && url.pathname === '/api/events') {
    setup.hub.subscribe(response);
    return;
  }
  const file = STATIC[url.pathname];
  if (request.method === 'GET' && file) {
    send(response, staticFile(file, setup.token));
    return;
  }
  const handler = route(request.method ?? '', url.pathname);
  if (!handler) {
    send(response, { status: 404, json: { error: 'ENOENT', message: `no ${request.method} ${url.pathname}` } });
    return;
  }
  const body = request.method === 'POST' ? await readBody(request) : Buffer.alloc(0);
  send(response, await handler(setup.context, { url, body }));
}

export function createServer(setup: ServerSetup): http.Server {
  return http.createServer((request, response) => {
    handle(setup, request, response).catch((e: unknown) => {
      const known = e instanceof BadRequest || (e as NodeJS.ErrnoException).code === 'ENOENT';
      if (!known) setup.log(`sandbox: ${request.method} ${request.url}: ${(e as Error).stack ?? String(e)}`);
      if (response.headersSent) response.destroy();
      else send(response, { status: e instanceof BadRequest ? 400 : known ? 404 : 500, json: { error: 'ERROR', message: (e as Error).message } });
    });
  });
}
