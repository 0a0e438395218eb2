/**
 * The overview's charts in a real browser on the demo data: the cumulative spend chart's Total / By
 * feature toggle and the usage chart's granularity selector draw exactly what the API answers. Each
 * chart's figures are read from the table it carries for screen readers (every point, labelled).
 */
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embedLink, launchBrowser, openPage, screenshot, startWebTally, type WebTally } from './support.ts';

interface Timeseries {
  granularity: 'hour' | 'day' | 'week';
  unit: string;
  series: { key: string; label: string }[];
  data: { start: string; credits: string; groups?: { key: string; credits: string }[] }[];
}

/** Waits on the page for longer than expect.poll's default second: a loaded machine is slow. */
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 8000 });

const credits = (value: string) =>
  new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(value as never);

describe('overview charts', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let timeZone: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.1, days: 40 }), launchBrowser()]);
    timeZone = (await web.tally.call('GET', `/v1/orgs/${web.orgId}`)).body.timezone;
    // The demo's weekends are quiet: run early on a Monday, its last 24 hours could hold no web or
    // CLI call, and the hourly chart would show its empty state. A few calls make sure it draws.
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [2, 7, 13, 19].map((hoursAgo, n) => ({
          id: `charts-recent-${n}`,
          org_id: web.orgId,
          member: 'charts-tester',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          surface: n % 2 ? 'cli' : 'web',
          occurred_at: new Date(Date.now() - hoursAgo * 3_600_000).toISOString(),
          usage: { input_tokens: 1200, output_tokens: 300 },
        })),
      },
    });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual(Array(4).fill('accepted'));
    page = await openPage(browser);
    await page.goto((await embedLink(web, 'owner')).url);
    await page.getByTestId('kpi-calls').waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const timeseries = (query: Record<string, string>) =>
    web.tally
      .call('GET', `/v1/orgs/${web.orgId}/usage/timeseries?${new URLSearchParams(query)}`)
      .then((r) => r.body as Timeseries);

  /** The chart's table as the API's answer should fill it: a row per bucket, a column per series. */
  function expectedTable(answer: Timeseries): string[][] {
    expect(answer.unit).toBe('credits');
    const label = new Intl.DateTimeFormat(
      'en-US',
      answer.granularity === 'hour'
        ? { hour: '2-digit', minute: '2-digit', timeZone }
        : { day: 'numeric', month: 'short', timeZone },
    );
    const series = answer.series.length === 0 ? [{ key: '', label: 'Total' }] : answer.series;
    return [
      ['Period', ...series.map((s) => s.label)],
      ...answer.data.map((point) => [
        label.format(new Date(point.start)),
        ...series.map((s) =>
          credits(
            s.key === '' ? point.credits : (point.groups?.find((g) => g.key === s.key)?.credits ?? '0'),
          ),
        ),
      ]),
    ];
  }

  const panel = (title: string) =>
    page.locator('section', { has: page.getByRole('heading', { name: title, exact: true }) });

  function readTable(table: Locator): Promise<string[][]> {
    return table.evaluate((element) =>
      // Runs in the page (the tests' typings have no DOM).
      [...(element as unknown as { rows: Iterable<{ cells: Iterable<{ textContent: string }> }> }).rows].map(
        (row) => [...row.cells].map((cell) => cell.textContent),
      ),
    );
  }

  const chartTable = (title: string) => readTable(panel(title).locator('figure table'));

  it('toggles the cumulative spend between the total and each feature, as the API counts them', async () => {
    const cumulative = panel('Cumulative spend');
    const base = { range: '30d', cumulative: 'true', split_limit: '6' };
    const total = await timeseries(base);
    await eventually(() => chartTable('Cumulative spend')).toEqual(expectedTable(total));
    // Cumulative: the last point is the period's whole spend.
    const summary = (await web.tally.call('GET', `/v1/orgs/${web.orgId}/usage/summary?range=30d`)).body;
    expect(total.data.at(-1)!.credits).toBe(summary.credits);
    expect(await cumulative.locator('.legend').count()).toBe(0);

    await cumulative.getByRole('button', { name: 'By feature' }).click();
    expect(await cumulative.getByRole('button', { name: 'By feature' }).getAttribute('aria-pressed')).toBe(
      'true',
    );
    const byFeature = await timeseries({ ...base, split: 'feature' });
    expect(byFeature.series.length).toBeGreaterThan(1);
    await eventually(() => chartTable('Cumulative spend')).toEqual(expectedTable(byFeature));
    expect(await cumulative.locator('.legend-item').allTextContents()).toEqual(
      byFeature.series.map((s) => s.label),
    );
    expect(await cumulative.locator('svg polyline').count()).toBe(byFeature.series.length);
    await screenshot(page, 'chart-by-feature');

    await cumulative.getByRole('button', { name: 'Total' }).click();
    await eventually(() => chartTable('Cumulative spend')).toEqual(expectedTable(total));
    expect(await cumulative.locator('svg polyline').count()).toBe(1);
  });

  it('draws the web and CLI usage hourly, daily or weekly, as the API buckets them', async () => {
    const usage = panel('Web and CLI usage');
    for (const [tab, range, option, granularity] of [
      ['24 hours', '1d', 'Hourly', 'hour'],
      ['7 days', '7d', 'Daily', 'day'],
      ['30 days', '30d', 'Weekly', 'week'],
      ['30 days', '30d', 'Daily', 'day'],
    ] as const) {
      await page.getByRole('tab', { name: tab }).click();
      await usage.getByLabel('Granularity').selectOption({ label: option });
      const answer = await timeseries({ range, split: 'surface', granularity });
      expect(answer.granularity).toBe(granularity);
      await eventually(() => chartTable('Web and CLI usage')).toEqual(expectedTable(answer));
      if (granularity === 'week') await screenshot(page, 'chart-weekly');
    }
    // Automatic: the API's own choice for the range.
    await page.getByRole('tab', { name: '24 hours' }).click();
    await usage.getByLabel('Granularity').selectOption({ label: 'Automatic' });
    const automatic = await timeseries({ range: '1d', split: 'surface' });
    expect(automatic.granularity).toBe('hour');
    await eventually(() => chartTable('Web and CLI usage')).toEqual(expectedTable(automatic));
  });
});
