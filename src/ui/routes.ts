/**
 * The sandbox page's API: one handler per method and path. Handlers get
 * the parsed request and answer with JSON (or bytes); whatever they throw
 * becomes a 500 answer in the server, never a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Daemon } from '../daemon/daemon.js';
import { dumpDaemon } from '../liveupdate/state-dump.js';
import type { Actor, DomainAction, NodeAction } from './actor.js';
import type { EventHub } from './event-hub.js';
import { connections, directoryPage, domains, nodeAt, searchPaths, stateDigest } from './state-views.js';
import { viewStream } from './stream-view.js';

/** Children sent per directory page (the page asks for more as you scroll). */
const PAGE_LIMIT = 200;
const SEARCH_LIMIT = 500;

export interface RouteContext {
  daemon: Daemon;
  actor: Actor;
  hub: EventHub;
  /** Starts a live update once the answer has gone out. */
  liveUpdate(): Promise<string>;
}

export interface RouteRequest {
  url: URL;
  body: Buffer;
}

export type Answer =
  | { status: number; json: unknown }
  | { status: number; bytes: Buffer; type: string; filename?: string };

type Handler = (ctx: RouteContext, req: RouteRequest) => Answer | Promise<Answer>;

const ok = (json: unknown): Answer => ({ status: 200, json });
const badRequest = (message: string): Answer => ({ status: 400, json: { error: 'EINVAL', message } });

function param(req: RouteRequest, name: string): string {
  return req.url.searchParams.get(name) ?? '';
}

function numberParam(req: RouteRequest, name: string, fallback: number): number {
  const n = Number(req.url.searchParams.get(name) ?? fallback);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

function json<T>(req: RouteRequest): T {
  try {
    return JSON.parse(req.body.toString('utf8')) as T;
  } catch {
    throw new BadRequest('the body is not JSON');
  }
}

export class BadRequest extends Error {}

/** A file the page names: a plain name inside the run directory, not a symbolic link out of it. */
function readRundirFile(daemon: Daemon, name: string): Buffer {
  const file = path.resolve(daemon.rundir, name);
  if (!name || path.dirname(file) !== path.resolve(daemon.rundir)) throw new BadRequest('only files directly in the run directory');
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new BadRequest(`${name} is a symbolic link`);
    throw e;
  }
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const GET: Record<string, Handler> = {
  '/api/dir': ({ daemon }, req) => {
    const page = directoryPage(daemon.store, param(req, 'path') || '/', numberParam(req, 'offset', 0), Math.min(numberParam(req, 'limit', PAGE_LIMIT), PAGE_LIMIT));
    return ok(page ?? null);
  },
  // A node that is gone is an answer (null), not an error: the page asks about nodes as they go.
  '/api/node': ({ daemon }, req) => ok(nodeAt(daemon.store, param(req, 'path')) ?? null),
  '/api/search': async ({ daemon }, req) => ok(await searchPaths(daemon.store, param(req, 'q'), SEARCH_LIMIT)),
  '/api/connections': ({ daemon }) => ok(connections(daemon)),
  '/api/domains': ({ daemon }) => ok(domains(daemon.store)),
  '/api/state': ({ daemon }) => ok({ pid: process.pid, generation: daemon.store.generation, ...stateDigest(daemon) }),
  '/api/dump': ({ daemon }) => ({
    status: 200, bytes: dumpDaemon(daemon, { version: 2 }), type: 'application/octet-stream', filename: 'xenstored-sim.dump',
  }),
  '/api/files': ({ daemon }) => ok(fs.readdirSync(daemon.rundir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)),
  '/api/stream': ({ daemon }, req) => ok(viewStream(readRundirFile(daemon, param(req, 'file')))),
};

const POST: Record<string, Handler> = {
  '/api/stream': (_ctx, req) => ok(viewStream(req.body)),
  '/api/node': async ({ actor }, req) => ok(await actor.node(json<NodeAction>(req))),
  '/api/domain': async ({ actor }, req) => {
    const action = json<DomainAction>(req);
    if (!Number.isInteger(action.domid) || action.domid <= 0) return badRequest('domid must be a positive integer');
    return ok(await actor.domain(action));
  },
  '/api/control': async ({ actor }, req) => {
    const { args } = json<{ args: string[] }>(req);
    if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string')) return badRequest('args must be a list of strings');
    try {
      return ok({ ok: true, value: await actor.control(...args) });
    } catch (e) {
      return ok({ ok: false, error: (e as { code?: string }).code ?? 'ERROR', message: (e as Error).message });
    }
  },
  '/api/live-update': ({ daemon, liveUpdate, hub }) => {
    const before = { pid: process.pid, ...stateDigest(daemon) };
    hub.notice('live-update', { phase: 'starting', before });
    void liveUpdate().then((failure) => hub.notice('live-update', { phase: 'failed', reason: failure }));
    return { status: 202, json: before };
  },
};

export function route(method: string, pathname: string): Handler | undefined {
  const table = method === 'GET' ? GET : method === 'POST' ? POST : undefined;
  return table && Object.hasOwn(table, pathname) ? table[pathname] : undefined;
}
