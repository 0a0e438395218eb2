/**
 * The overview's figures and the paged lists in a real browser: exact unit prices, the trend pill
 * and what it compares against, providers on the model bars, the tokens KPI, the "This cycle" tab,
 * and lists longer than a page reached through Load more (members, payments, prices).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCount, launchBrowser, ownerPage, startWebTally, type WebTally } from './support.ts';

/** Members a page of the app's lists holds (Settings, the user filter, payments). */
const PAGE = 100;

describe('overview figures and paged lists', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let ownerKey: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 70 }), launchBrowser()]);
    ({ page, key: ownerKey } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const api = async (path: string) => {
    const res = await web.tally.call('GET', path, { key: ownerKey });
    if (res.status !== 200) throw new Error(`${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const usage = (path: string) => api(`/v1/orgs/${web.orgId}${path}`);
  const trend = () => page.getByTestId('kpi-trend');

  it('says what the trend compares against, and shows no trend for last month', async () => {
    const { timezone } = await api(`/v1/orgs/${web.orgId}`);
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      dateStyle: 'medium',
      timeStyle: 'short',
    });
    const when = (iso: string) => format.format(new Date(iso));
    for (const [tab, range, against, explained] of [
      ['This month', 'mtd', 'vs last month', 'This month so far against the same days of last month'],
      ['7 days', '7d', 'vs previous 7 days', 'Against the 7 days just before this period'],
      ['24 hours', '1d', 'vs previous 24 hours', 'Against the 24 hours just before this period'],
    ] as const) {
      await page.getByRole('tab', { name: tab }).click();
      const summary = await usage(`/usage/summary?range=${range}`);
      await expect.poll(() => page.getByTestId('kpi-calls').textContent()).toBe(formatCount(summary.calls));
      await expect.poll(() => trend().textContent()).toBe(`${summary.trend.label} ${against}`);
      // The tooltip names the period compared with, as the API gives it, in the org's time zone.
      const { previous_start, previous_end } = summary.range;
      expect(await trend().getAttribute('title')).toBe(
        `${explained}: ${when(previous_start)} to ${when(previous_end)}`,
      );
    }
    // A custom range is compared with as many days just before it.
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    await page.getByRole('tab', { name: 'Custom' }).click();
    await page.getByLabel('From').fill(day(10));
    await page.getByLabel('To').fill(day(3));
    const custom = await usage(`/usage/summary?range=custom&from=${day(10)}&to=${day(3)}`);
    await expect.poll(() => trend().textContent()).toBe(`${custom.trend.label} vs previous 8 days`);
    await page.getByRole('tab', { name: 'Last month' }).click();
    const lastMonth = await usage('/usage/summary?range=last_month');
    expect(lastMonth.calls).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('kpi-calls').textContent()).toBe(formatCount(lastMonth.calls));
    expect(await trend().count()).toBe(0);
  });

  it('shows the tokens of the period', async () => {
    await page.getByRole('tab', { name: '30 days' }).click();
    const summary = await usage('/usage/summary?range=30d');
    expect(summary.tokens.total).toBeGreaterThan(0);
    await expect
      .poll(() => page.getByTestId('kpi-tokens').textContent())
      .toBe(formatCount(summary.tokens.total));
  });

  it('labels each model bar with its provider and model', async () => {
    const byModel = await usage('/usage/breakdown?range=30d&by=model&limit=10');
    const names: Record<string, string> = { openai: 'OpenAI', anthropic: 'Anthropic', google: 'Google' };
    const panel = page.locator('section', { has: page.getByRole('heading', { name: 'By model' }) });
    const labels = panel.locator('.bar-label > span:first-child');
    await expect
      .poll(() => labels.allTextContents())
      .toEqual(byModel.data.map((row: any) => `${names[row.provider] ?? row.provider} · ${row.label}`));
    expect(byModel.data.some((row: any) => row.provider === 'openai')).toBe(true);
  });

  it('shows unit prices to their last decimal', async () => {
    const prices = (await api('/v1/prices?limit=1000')).data as {
      operation: string;
      price: string;
      currency: string;
    }[];
    // A price with a digit past the fourth decimal, which four-decimal money formatting would drop.
    const fine = prices.find((p) => /\.\d{4}\d*[1-9]/.test(p.price) && Number(p.price) < 0.01);
    expect(fine).toBeDefined();
    await page.goto(`${web.url}/usage/pricing`);
    await page.getByLabel('Search by name').fill(fine!.operation);
    // The search applies once typing pauses; until then the unfiltered list, which may hold the
    // row too, is on screen. The filtered list fits on one page: its end shows when it is there.
    await page.getByText('End of the price list').waitFor();
    const exact = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: fine!.currency,
      maximumFractionDigits: 8,
    }).format(fine!.price as Intl.StringNumericLiteral);
    const row = page.locator('tbody tr', {
      has: page.getByRole('rowheader', { name: fine!.operation, exact: true }),
    });
    await expect.poll(() => row.first().locator('td.num').textContent()).toBe(exact);
    expect(exact).toContain(fine!.price.replace(/^0/, ''));
  });

  it('pages through the whole price list with Load more', async () => {
    const { data, has_more } = await api(`/v1/prices?limit=${PAGE}`);
    expect(has_more).toBe(true);
    await page.getByLabel('Search by name').fill('');
    const rows = page.locator('tbody tr');
    // Read once the cleared search applies (after the typing pause), not from the list before it.
    await expect.poll(() => rows.first().locator('th').textContent()).toBe(data[0].operation);
    await expect.poll(() => rows.count()).toBe(PAGE);
    await page.getByRole('button', { name: 'Load more' }).click();
    const second = await api(`/v1/prices?limit=${PAGE * 2}`);
    await expect.poll(() => rows.count()).toBe(second.data.length);
    expect(await rows.nth(PAGE).locator('th').textContent()).toBe(second.data[PAGE].operation);
    await page.getByLabel('Search by name').fill('gpt-4o-mini');
    await page.getByText('End of the price list').waitFor();
  });

  it('loads members past the first page in settings and in the user filter', async () => {
    const before = (await usage('/members?limit=1000')).data.length;
    const extra = PAGE + 5 - before;
    for (let i = 0; i < extra; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, extra - i) }, (_, j) =>
          web.tally.call('POST', `/v1/orgs/${web.orgId}/members`, {
            body: { external_id: `paged_${i + j}`, name: `Paged Member ${String(i + j).padStart(3, '0')}` },
          }),
        ),
      );
    }
    const all = (await usage('/members?limit=1000')).data as { id: string; name: string | null }[];
    expect(all.length).toBe(PAGE + 5);

    await page.goto(`${web.url}/usage/settings`);
    const panel = page.locator('section', { has: page.getByRole('heading', { name: 'Members and roles' }) });
    const rows = panel.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(PAGE);
    expect(await panel.getByText('End of the member list').count()).toBe(0);
    await panel.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => rows.count()).toBe(all.length);
    await panel.getByText('End of the member list').waitFor();
    // A role changed on the second page is changed in place: the pages read stay. Members are listed
    // by their random ids, so the second page's are any five: the first made here has role 'member'
    // (a demo member there may already be a viewer, or removed, and show no Save).
    const last = all.slice(PAGE).find((m) => m.name?.startsWith('Paged Member'))!;
    expect(last).toBeDefined();
    await page.getByLabel(`Role of ${last.name}`).selectOption('viewer');
    await page.getByRole('button', { name: 'Save role' }).click();
    await expect
      .poll(async () => (await usage('/members?limit=1000')).data.find((m: any) => m.id === last.id).role)
      .toBe('viewer');
    expect(await rows.count()).toBe(all.length);

    await page.goto(`${web.url}/usage`);
    const filter = page.getByLabel('User', { exact: true });
    await expect.poll(() => filter.isEnabled()).toBe(true);
    expect(await filter.locator('option').count()).toBe(PAGE + 1);
    await filter.focus();
    await expect.poll(() => filter.locator('option').count()).toBe(all.length + 1);
    await filter.selectOption(last.id);
    const summary = await usage(`/usage/summary?range=30d&member=${last.id}`);
    await expect.poll(() => page.getByTestId('kpi-calls').textContent()).toBe(formatCount(summary.calls));
  });

  it('lists only payments that went through, and every checkout past the first page on request', async () => {
    for (let i = 0; i < PAGE + 1; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, PAGE + 1 - i) }, () =>
          web.tally.call('POST', `/v1/orgs/${web.orgId}/checkout_sessions`, { body: { amount: '10' } }),
        ),
      );
    }
    const total = (await usage('/payments?limit=1000')).data.length;
    expect(total).toBeGreaterThan(PAGE);
    await page.goto(`${web.url}/usage/payments`);
    // Checkouts nobody paid are not payments: the list shows them only when asked to.
    expect((await usage('/payments?limit=1000&status=completed,refunded,disputed')).data).toEqual([]);
    await page.getByText('No completed payments yet.').waitFor();
    await page.getByLabel('Show checkouts not completed').check();
    const rows = page
      .locator('section', { has: page.getByRole('heading', { name: 'Payments' }) })
      .locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(PAGE);
    expect(await rows.first().locator('.status').textContent()).toBe('Awaiting payment');
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => rows.count()).toBe(total);
    await page.getByText('End of payments').waitFor();
  });

  it('offers "This cycle" when the billing cycle does not start on the 1st', async () => {
    await page.goto(`${web.url}/usage`);
    await page.getByTestId('kpi-calls').waitFor();
    expect(await page.getByRole('tab', { name: 'This cycle' }).count()).toBe(0);
    const anchored = await web.tally.call('PATCH', `/v1/orgs/${web.orgId}`, {
      body: { billing_cycle_anchor: '2025-01-15' },
    });
    expect(anchored.status).toBe(200);
    await page.reload();
    await page.getByRole('tab', { name: 'This cycle' }).click();
    const summary = await usage('/usage/summary?range=cycle');
    await expect.poll(() => page.getByTestId('kpi-calls').textContent()).toBe(formatCount(summary.calls));
    await expect.poll(() => trend().textContent()).toBe(`${summary.trend.label} vs last cycle`);
  });
});
