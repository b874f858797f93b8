/** Who the sandbox page answers: token, Host and Origin checks. */
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedHosts, newToken, refusal } from '../../src/ui/guard.js';

const TOKEN = newToken();
const HOSTS = allowedHosts('127.0.0.1', 8123);

function request(headers: Record<string, string>, query = `?token=${TOKEN}`): [IncomingMessage, URL] {
  return [{ headers } as unknown as IncomingMessage, new URL(`http://x/api/state${query}`)];
}

const check = (headers: Record<string, string>, query?: string) => refusal(...request(headers, query), TOKEN, HOSTS)?.reason;

describe('the sandbox guard', () => {
  it('lets the page through, from any loopback name, with or without an Origin', () => {
    expect(check({ host: '127.0.0.1:8123' })).toBeUndefined();
    expect(check({ host: 'localhost:8123', origin: 'http://localhost:8123' })).toBeUndefined();
    expect(check({ host: '[::1]:8123' })).toBeUndefined();
    expect(check({ host: '127.0.0.1:8123', 'x-sandbox-token': TOKEN }, '')).toBeUndefined();
  });

  it('refuses other host names (DNS rebinding), other ports and origins (cross-site requests)', () => {
    expect(check({ host: 'evil.example:8123' })).toBe('unknown Host header');
    expect(check({ host: '127.0.0.1:8124' })).toBe('unknown Host header');
    expect(check({})).toBe('unknown Host header');
    expect(check({ host: '127.0.0.1:8123', origin: 'http://evil.example' })).toBe('cross-origin request');
    expect(check({ host: '127.0.0.1:8123', origin: 'null' })).toBe('cross-origin request');
    expect(check({ host: '127.0.0.1:8123', origin: 'https://127.0.0.1:8123' })).toBe('cross-origin request');
  });

  it('refuses every token but the right one', () => {
    fc.assert(fc.property(fc.string(), (guess) => {
      fc.pre(guess !== TOKEN);
      expect(check({ host: '127.0.0.1:8123' }, `?token=${encodeURIComponent(guess)}`)).toBe('missing or wrong token');
    }));
    expect(check({ host: '127.0.0.1:8123' }, '')).toBe('missing or wrong token');
  });

  it('answers to the address it is bound to as well', () => {
    expect([...allowedHosts('10.0.0.5', 80)]).toContain('10.0.0.5:80');
    expect([...allowedHosts('::', 80)]).toContain('[::]:80');
  });
});
