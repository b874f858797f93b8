/**
 * Who may talk to the sandbox page: whoever holds the token, through a
 * Host the server answers to (no DNS rebinding) and, when the browser says
 * where a request comes from, from the page's own origin (no cross-site
 * requests).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export function newToken(): string {
  return randomBytes(18).toString('base64url');
}

export interface Refusal {
  status: 403;
  reason: string;
}

/** Host headers that name this server: loopback names, and the bound host if it is another. */
export function allowedHosts(boundHost: string, port: number): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]']);
  names.add(boundHost.includes(':') ? `[${boundHost}]` : boundHost);
  return new Set([...names].map((n) => `${n}:${port}`));
}

function sameToken(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Undefined when the request may go on, else why not. */
export function refusal(request: IncomingMessage, url: URL, token: string, hosts: Set<string>): Refusal | undefined {
  if (!hosts.has(request.headers.host ?? '')) return { status: 403, reason: 'unknown Host header' };
  const origin = request.headers.origin;
  if (origin !== undefined && !hosts.has(origin.replace(/^http:\/\//, ''))) return { status: 403, reason: 'cross-origin request' };
  if (!sameToken(url.searchParams.get('token') ?? headerToken(request), token)) return { status: 403, reason: 'missing or wrong token' };
  return undefined;
}

function headerToken(request: IncomingMessage): string | null {
  const value = request.headers['x-sandbox-token'];
  return typeof value === 'string' ? value : null;
}
