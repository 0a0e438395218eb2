/**
 * Browser tests: Debian's Chromium driven by playwright-core against a real Tally (the harness's app on a
 * real socket) loaded with the demo organization. One browser and one Tally per test file.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { seedDemo } from '../../src/demo/seedDemo.ts';
import { listen } from '../../src/server.ts';
import { ensureWebBuilt } from '../../web/scripts/ensureBuilt.ts';
import { startTally, type TestTally } from '../support/harness.ts';

export const CHROMIUM = process.env.TALLY_CHROMIUM ?? '/usr/bin/chromium';

/** A page in a context of its own (English, desktop size) whose uncaught errors fail the test. */
export async function openPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  return page;
}

/** Makes an owner API key for the demo org and signs in with it on a page of its own. */
export async function ownerPage(browser: Browser, web: WebTally): Promise<{ page: Page; key: string }> {
  const created = await web.tally.call('POST', `/v1/orgs/${web.orgId}/api_keys`, {
    body: { name: 'browser test', role: 'owner' },
  });
  const page = await openPage(browser);
  await signIn(page, web, created.body.key);
  return { page, key: created.body.key };
}

/**
 * Signs in on the app's own page with an org API key and waits for `ready` (by default the
 * overview's call count, which a BYOK org's overview does not have).
 */
export async function signIn(
  page: Page,
  web: WebTally,
  key: string,
  ready: (page: Page) => Locator = (p) => p.getByTestId('kpi-calls'),
): Promise<void> {
  await page.goto(`${web.url}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await ready(page).waitFor();
}
export const SCREENS_DIR = 'test-artifacts/screens';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface WebTally {
  tally: TestTally;
  url: string;
  orgId: string;
  close(): Promise<void>;
}

/** A listening Tally with the demo org (lighter than `npm start`'s, for the tests' run time). */
export async function startWebTally(demo: { volume: number; days: number }): Promise<WebTally> {
  await ensureWebBuilt();
  const tally = await startTally({ PORT: '0', HOST: '127.0.0.1' });
  const seeded = await seedDemo(tally, { ...demo, now: new Date() });
  const server = await listen(tally);
  return {
    tally,
    url: server.url,
    orgId: seeded!.orgId,
    async close() {
      await server.close();
      await tally.close();
    },
  };
}

/** The demo org's answer at `path` (below /v1/orgs/{org}) for the operator; anything but 200 fails the test. */
export async function demoOrgGet(web: WebTally, path: string) {
  const res = await web.tally.call('GET', `/v1/orgs/${web.orgId}${path}`);
  if (res.status !== 200) throw new Error(`GET ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * One call of a demo member now (its event id answered), so "this month" has usage in the demo org however early in the
 * month the test runs (its generated history may hold none yet in the month's first hours).
 */
export async function demoCallNow(web: WebTally): Promise<string> {
  const id = `demo-now-${Date.now()}`;
  const res = await web.tally.call('POST', '/v1/events', {
    body: {
      events: [
        {
          id,
          org_id: web.orgId,
          member: 'u_1001',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: new Date().toISOString(),
          usage: { input_tokens: 1_000, output_tokens: 100 },
        },
      ],
    },
  });
  if (res.body.results?.[0]?.status !== 'accepted') throw new Error(`demo call: ${JSON.stringify(res.body)}`);
  return id;
}

/** Mints an embed token for a demo member and role through the public API. */
export async function embedLink(
  web: WebTally,
  role: string,
  options: { member?: string; ttl_seconds?: number; orgId?: string } = {},
): Promise<{ token: string; url: string }> {
  const orgId = options.orgId ?? web.orgId;
  const res = await web.tally.call('POST', `/v1/orgs/${orgId}/embed_tokens`, {
    body: { member: options.member ?? 'u_1001', role, ttl_seconds: options.ttl_seconds },
  });
  if (res.status !== 201) throw new Error(`embed token: ${JSON.stringify(res.body)}`);
  // The token's URL names the address the API was called on; the browser reaches Tally here.
  return { token: res.body.token, url: `${web.url}/embed#token=${res.body.token}` };
}

/** The class names of the page's visible tables that reach past the right edge of its viewport. */
export function tablesPastEdge(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    // Runs in the page (the tests' typings have no DOM).
    const win = globalThis as unknown as {
      innerWidth: number;
      document: {
        querySelectorAll(
          s: string,
        ): Iterable<{ className: string; getBoundingClientRect(): { right: number } }>;
      };
    };
    return [...win.document.querySelectorAll('table:not(.sr-only)')]
      .filter((t) => t.getBoundingClientRect().right > win.innerWidth)
      .map((t) => t.className);
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENS_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENS_DIR}/${name}.png`, fullPage: true });
}

/** Another origin, standing in for the host app that embeds the page. */
export async function startHostPage(html: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    // localhost, not 127.0.0.1: a different origin from Tally's.
    url: `http://localhost:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export const formatCount = (n: number) => new Intl.NumberFormat('en-US').format(n);
