/**
 * The operator view in a real browser: more organizations than one page holds, Load more to the end,
 * each org's spend this month as the API's own summary counts it, and the search by name.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFormats } from '../../web/src/format.ts';
import { OPERATOR_KEY } from '../support/harness.ts';
import {
  demoCallNow,
  formatCount,
  launchBrowser,
  openPage,
  screenshot,
  startWebTally,
  tablesPastEdge,
  type WebTally,
} from './support.ts';

/** Waits on the page for longer than expect.poll's default second: a loaded machine is slow. */
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 8000 });

const TENANTS = 55;
const PAGE_SIZE = 50;

describe('operator view of every organization', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let total: number;
  let busyOrg: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 35 }), launchBrowser()]);
    for (let n = 1; n <= TENANTS; n += 1) {
      const org = await web.tally.call('POST', '/v1/orgs', {
        body: {
          name: `Tenant ${String(n).padStart(3, '0')}`,
          currency: n % 2 ? 'EUR' : 'USD',
          timezone: n % 3 ? 'Europe/Berlin' : 'America/New_York',
          billing_mode: n % 5 === 0 ? 'byom' : 'credits',
        },
      });
      expect(org.status).toBe(201);
      if (n === 7) busyOrg = org.body.id;
    }
    await web.tally.call('POST', `/v1/orgs/${busyOrg}/members`, {
      body: { external_id: 'busy-1', name: 'Busy One', role: 'member' },
    });
    const spent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [1, 2, 3].map((i) => ({
          id: `busy-${i}`,
          org_id: busyOrg,
          member: 'busy-1',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: new Date().toISOString(),
          usage: { input_tokens: 50_000 * i, output_tokens: 5_000 },
        })),
      },
    });
    expect(spent.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    await demoCallNow(web);
    total = (await web.tally.call('GET', '/v1/orgs?limit=1000')).body.data.length;
    expect(total).toBeGreaterThan(PAGE_SIZE);
    page = await openPage(browser);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const rows = () => page.locator('tbody tr');
  const rowOf = (name: string) =>
    page.locator('tr', { has: page.getByRole('button', { name, exact: true }) });

  it('shows a page of organizations, then the rest with Load more, each with its spend this month', async () => {
    await page.goto(`${web.url}/`);
    await page.getByLabel('API key').fill(OPERATOR_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'All organizations' }).waitFor();
    await eventually(() => rows().count()).toBe(PAGE_SIZE);
    await page.getByRole('button', { name: 'Load more' }).click();
    await eventually(() => rows().count()).toBe(total);
    await page.getByText(`All ${total} organizations shown`).waitFor();
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    const names = await page.locator('tbody th').allTextContents();
    expect(new Set(names).size).toBe(total);

    for (const [orgId, name] of [
      [web.orgId, 'Northwind Labs'],
      [busyOrg, 'Tenant 007'],
    ] as const) {
      const summary = (await web.tally.call('GET', `/v1/orgs/${orgId}/usage/summary?range=mtd`)).body;
      const org = (await web.tally.call('GET', `/v1/orgs/${orgId}`)).body;
      const formats = createFormats(org.currency, org.timezone, 'en-US');
      expect(summary.calls).toBeGreaterThan(0);
      const cells = await rowOf(name).locator('td').allTextContents();
      expect(cells).toEqual([
        org.billing_mode,
        formats.credits(summary.credits),
        formats.money(summary.cost, summary.currency),
        formatCount(summary.calls),
      ]);
    }
    // A BYOM org spends USD, and credits mean nothing to it.
    expect(await rowOf('Tenant 005').locator('td').allTextContents()).toEqual(['byom', '—', '$0.00', '0']);
    await screenshot(page, 'operator-orgs-all');
    // On a phone each organization is a card that fits the screen.
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await tablesPastEdge(page)).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('searches by name, any case, with wildcards taken literally', async () => {
    await page.getByLabel('Search by name').fill('tenant 00');
    await eventually(() => rows().count()).toBe(9);
    expect((await page.locator('tbody th').allTextContents()).sort()).toEqual(
      Array.from({ length: 9 }, (_, i) => `Tenant 00${i + 1}`).sort(),
    );
    await page.getByText('All 9 organizations shown').waitFor();
    await page.getByLabel('Search by name').fill('NORTHWIND');
    await eventually(() => page.locator('tbody th').allTextContents()).toEqual(['Northwind Labs']);
    await page.getByLabel('Search by name').fill('ten%t');
    await page.getByText('No organization name contains “ten%t”.').waitFor();
    await screenshot(page, 'operator-orgs-search');
    await page.getByLabel('Search by name').fill('');
    await eventually(() => rows().count()).toBe(PAGE_SIZE);
  });

  it('validates the list query', async () => {
    const long = await web.tally.call('GET', `/v1/orgs?q=${'x'.repeat(201)}`);
    expect(long.status).toBe(400);
    expect(long.body.param).toBe('q');
    const include = await web.tally.call('GET', '/v1/orgs?include=everything');
    expect(include.status).toBe(400);
    expect(include.body.param).toBe('include');
  });
});
