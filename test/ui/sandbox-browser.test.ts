/**
 * The sandbox page in a real browser (Debian's chromium, headless), against
 * a real daemon started with --ui, changed by Debian's xenstore-utils and
 * the typed client as a separate program would. Screenshots of the main
 * views go to test-artifacts/ (the README's comes from there).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XsClient } from '../../src/client/index.js';
import { launchBrowser, type Browser } from '../helpers/browser.js';
import { REPO_ROOT, startSim, type SimDaemon } from '../helpers/sim-daemon.js';

const run = promisify(execFile);
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
/** The issue's promise: a change shows within a second. */
const LIVE_MS = 1000;

let sim: SimDaemon;
let browser: Browser;
let page: Page;
let uiUrl: string;
const consoleErrors: string[] = [];

async function xs(tool: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(tool, args, { env: { ...process.env, XENSTORED_PATH: sim.socketPath } });
  return stdout.trim();
}

function row(nodePath: string): string {
  return `#tree .row[data-path="${nodePath}"]`;
}

async function shoot(name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

beforeAll(async () => {
  sim = await startSim({ args: ['--ui', '0'] });
  uiUrl = /^UI=(.+)$/m.exec(sim.stdout())?.[1] ?? '';
  expect(uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(uiUrl);
  await page.waitForSelector('#status.live');
});

afterAll(async () => {
  await browser?.close();
  await sim?.stop();
});

describe('the sandbox page', () => {
  it('loads with the initial tree and no console errors', async () => {
    await page.waitForSelector(row('/tool'));
    expect(consoleErrors).toEqual([]);
  });

  it('shows a node written with xenstore-write within a second, marked as just changed', async () => {
    await xs('xenstore-write', '/sandbox-live', 'written outside');
    await page.waitForSelector(`${row('/sandbox-live')}.fresh`, { timeout: LIVE_MS });
    expect(await page.textContent(`${row('/sandbox-live')} .value`)).toBe('written outside');
    await xs('xenstore-chmod', '/sandbox-live', 'n0', 'r3');
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'n0 r3', `${row('/sandbox-live')} .perms`, { timeout: LIVE_MS });
    await xs('xenstore-rm', '/sandbox-live');
    await page.waitForSelector(row('/sandbox-live'), { state: 'detached', timeout: LIVE_MS });
  });

  it('writes what xenstore-read then returns', async () => {
    await page.fill('#node-path', '/sandbox-edit');
    await page.fill('#node-value', 'edited in the page');
    await page.click('[data-op="write"]');
    await page.waitForSelector('#result.good');
    expect(await xs('xenstore-read', '/sandbox-edit')).toBe('edited in the page');
    await page.waitForSelector(row('/sandbox-edit'));
    await shoot('tree-and-events');
  });

  it('runs a transaction, and a change made meanwhile by another client makes its commit fail', async () => {
    await page.click('[data-op="tx-start"]');
    await page.waitForFunction(() => document.querySelector('#tx-state')?.textContent?.startsWith('#'));
    await page.fill('#node-path', '/sandbox-edit');
    await page.click('[data-op="read"]');
    await page.waitForFunction(() => document.querySelector('#result')?.textContent?.startsWith('dom0 read /sandbox-edit: OK'));
    await page.fill('#node-value', 'from the transaction');
    await page.click('[data-op="write"]');
    await page.waitForFunction(() => document.querySelector('#result')?.textContent === 'dom0 write /sandbox-edit: OK');
    expect(await xs('xenstore-read', '/sandbox-edit')).toBe('edited in the page');
    await xs('xenstore-write', '/sandbox-edit', 'changed meanwhile');
    await page.click('[data-op="tx-commit"]');
    await page.waitForSelector('#result.bad');
    expect(await page.textContent('#result')).toBe('dom0 tx-commit /sandbox-edit: EAGAIN');
    expect(await page.textContent('#tx-state')).toBe('none');
    expect(await xs('xenstore-read', '/sandbox-edit')).toBe('changed meanwhile');
  });

  it('pages a large directory instead of sending it whole', async () => {
    const client = await XsClient.connect(sim.socketPath);
    await client.transaction(async (tx) => {
      for (let i = 0; i < 450; i++) await tx.write(`/sandbox-many/n${i}`, String(i));
    });
    await client.close();
    await page.waitForSelector(row('/sandbox-many'));
    await page.click(`${row('/sandbox-many')} .toggle`);
    await page.waitForSelector('#tree .row.more button');
    expect(await page.textContent('#tree .row.more button')).toBe('load more (200 of 450)');
    await page.click('#tree .row.more button');
    await page.waitForFunction(() => document.querySelector('#tree .row.more button')?.textContent === 'load more (400 of 450)');
    await page.click(`${row('/sandbox-many')} .toggle`);
  });

  it('filters the tree by path', async () => {
    await page.fill('#filter', 'n44');
    await page.waitForSelector(row('/sandbox-many/n449'));
    expect(await page.locator('#tree .row').count()).toBe(11); // n44 and n440..n449
    await page.fill('#filter', '');
    await page.waitForSelector(row('/tool'));
  });

  it('acts as a guest domain through its own connection, which gets EACCES', async () => {
    await page.click('[data-tab="domains"]');
    await page.fill('#dom-id', '7');
    await page.click('[data-domain="introduce"]');
    await page.waitForSelector('#act-as option[value="7"]', { state: 'attached' });
    await page.selectOption('#act-as', '7');
    await page.waitForFunction(() => document.querySelector('#result')?.textContent?.startsWith('acting as domain 7'));
    await page.fill('#node-path', 'name');
    await page.fill('#node-value', 'guest seven');
    await page.click('[data-op="write"]');
    await page.waitForFunction(() => document.querySelector('#result')?.textContent === 'domain 7 write name: OK');
    await page.fill('#node-path', '/tool/xenstored');
    await page.click('[data-op="read"]');
    await page.waitForSelector('#result.bad');
    expect(await page.textContent('#result')).toBe('domain 7 read /tool/xenstored: EACCES');
    await page.click('[data-tab="events"]');
    await page.fill('#ev-path', '/tool/xenstored');
    await page.waitForSelector('.ev-error');
    expect(await page.textContent('.ev-error .rest')).toContain('EACCES');
    await page.fill('#ev-path', '');
    await page.click('[data-tab="domains"]');
    await shoot('domains');
  });

  it('shows connections with their watches, transactions and quotas', async () => {
    const watcher = await XsClient.connect(sim.socketPath);
    await watcher.watch('/sandbox-edit', 'page-test');
    const tx = await watcher.startTransaction();
    await tx.read('/sandbox-edit');
    await tx.write('/sandbox-tx', 'in a transaction');
    await page.click('[data-tab="connections"]');
    await page.waitForSelector('#connections li.tx');
    // Creating /sandbox-tx writes its parent's list of children too.
    expect(await page.textContent('#connections li.tx')).toBe(`transaction ${tx.txId}: read /sandbox-edit; wrote /sandbox-tx, /`);
    expect(await page.textContent('#connections')).toContain('watch /sandbox-edit token page-test');
    expect(await page.textContent('#connections')).toContain('domain 7 ring');
    await shoot('connections');
    await tx.abort();
    await watcher.close();
  });

  it('live update keeps the process, the tree and an open transaction', async () => {
    const client = await XsClient.connect(sim.socketPath);
    const tx = await client.startTransaction();
    await tx.write('/sandbox-lu', 'committed after the update');
    await page.click('#live-update');
    await page.waitForSelector('#lu-report.good, #lu-report.bad', { timeout: 20_000 });
    const report = await page.textContent('#lu-report');
    expect(report).toContain(`After: pid ${sim.pid},`);
    expect(report).toContain('Same state ✓, same process');
    await page.waitForSelector('#status.live');
    await page.waitForSelector(row('/sandbox-edit'));
    await tx.commit();
    expect(await xs('xenstore-read', '/sandbox-lu')).toBe('committed after the update');
    await client.close();
    expect(sim.stderr()).not.toContain('spawned successor');
    await shoot('after-live-update');
    // The README's picture: a guest's home open in the tree, the event stream beside it.
    await page.click('[data-tab="events"]');
    for (const dir of ['/local', '/local/domain', '/local/domain/7']) {
      await page.waitForSelector(row(dir));
      await page.click(`${row(dir)} .toggle`);
    }
    await page.waitForSelector(row('/local/domain/7/name'));
    await shoot('sandbox');
  });

  it('lists the records of a migration stream written by C xenstored', async () => {
    await page.setInputFiles('#stream-file', path.join(REPO_ROOT, 'test/fixtures/c-xenstored/basic.bin'));
    await page.waitForSelector('#stream table.records tr');
    expect(await page.textContent('#stream')).toContain('version 1');
    expect(await page.locator('#stream table.records tr').count()).toBeGreaterThan(3);
    await shoot('stream');
    expect(consoleErrors).toEqual([]);
  });

  it('refuses requests without the token, from another site or through another host name', async () => {
    const base = new URL(uiUrl);
    const token = base.searchParams.get('token')!;
    const at = (p: string, withToken: boolean) => `${base.origin}${p}${withToken ? `?token=${token}` : ''}`;
    expect((await fetch(at('/', false))).status).toBe(403);
    expect((await fetch(at('/api/events', false))).status).toBe(403);
    expect((await fetch(at('/api/node', false), { method: 'POST', body: '{}' })).status).toBe(403);
    expect((await fetch(at('/api/state', true), { headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await fetch(at('/api/state', true))).status).toBe(200);
  });
});
