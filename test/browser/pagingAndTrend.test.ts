/**
 * Paging and the trend tooltip in a real browser, against a real Tally over HTTP: the overview's
 * recent activity appends the API's next pages in order (busy while a page is in flight), starts over
 * on a new filter or range without taking a late page of the old list, keeps a Load more clicked while
 * a pushed change reloads the list (going on from the new first page), and the trend pill of a custom
 * range names the exact previous period the API compares it with.
 *
 * A page "in flight" is the browser's real request, held by page.route until the test lets it go on
 * to Tally unchanged: the answers are always the server's own.
 */
import type { Browser, Page, Request, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFormats, type Formats, providerName } from '../../web/src/format.ts';
import type { UsageEvent } from '../../web/src/types.ts';
import { otherUsageText } from '../../web/src/units.ts';
import { demoCallNow, launchBrowser, ownerPage, startWebTally, type WebTally } from './support.ts';

/** Rows a page of recent activity holds (web/src/components/Activity.tsx). */
const PAGE = 50;
const DAY_MS = 86_400_000;

interface EventsPage {
  data: UsageEvent[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Waits on the page for longer than expect.poll's default second: a loaded machine is slow. */
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 10_000 });

/** A browser request for recent activity (a Load more of the list, once its first page is shown). */
const isEventsPage = (url: URL) => url.pathname.endsWith('/usage/events');

/**
 * Holds the page's next request matching `match` until `release`; it then goes on to Tally as it was
 * sent. `sent` is that request (failing if the page does not ask within the time expect.poll would
 * wait); `release` resolves once Tally's whole answer has reached the browser.
 */
async function holdNextRequest(page: Page, match: (url: URL) => boolean) {
  let letGo!: () => void;
  const gate = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  let caught!: (request: Request) => void;
  const request = new Promise<Request>((resolve) => {
    caught = resolve;
  });
  await page.route(
    match,
    async (route: Route) => {
      caught(route.request());
      await gate;
      await route.continue();
    },
    { times: 1 },
  );
  const sent = async () => {
    let gaveUp: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        request,
        new Promise<never>((_, reject) => {
          gaveUp = setTimeout(() => reject(new Error('The page did not ask for the next page')), 10_000);
        }),
      ]);
    } finally {
      clearTimeout(gaveUp);
    }
  };
  return {
    /** The query the held request asks with. */
    async query() {
      return new URL((await sent()).url()).searchParams;
    },
    async release() {
      const held = await sent();
      letGo();
      const response = await held.response();
      expect(response?.status()).toBe(200);
      await response!.finished();
    },
  };
}

describe('paged activity and the trend tooltip', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let key: string;
  let timeZone: string;
  let formats: Formats;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 40 }), launchBrowser()]);
    ({ page, key } = await ownerPage(browser, web));
    const org = await http('');
    timeZone = org.timezone;
    formats = createFormats(org.currency, timeZone, 'en-US');
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  /** The org's API over real HTTP, as the browser reaches it. */
  async function http(path: string, query: Record<string, string> = {}): Promise<any> {
    const params = new URLSearchParams(query).toString();
    const res = await fetch(`${web.url}/v1/orgs/${web.orgId}${path}${params ? `?${params}` : ''}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }
  const events = (query: Record<string, string>): Promise<EventsPage> =>
    http('/usage/events', { limit: String(PAGE), ...query });

  const activity = () =>
    page.locator('section', { has: page.getByRole('heading', { name: 'Recent activity', exact: true }) });
  /** The list's foot button: Load more, or Loading… while a page is in flight. */
  const moreButton = () => activity().getByRole('button', { name: /^(Load more|Loading…)$/ });

  /** Each activity row as the page shows it: its cells' text, and the tokens cell's breakdown. */
  const shownRows = (): Promise<string[][]> =>
    activity()
      .locator('tbody tr')
      .evaluateAll((rows) =>
        // Runs in the page (the tests' typings have no DOM).
        rows.map((row: any) => [
          ...[...row.cells].map((cell: any) => cell.textContent),
          row.querySelector('td[title]')?.getAttribute('title') ?? '',
        ]),
      );

  /** The tokens cell's text: the count, then what else the call counted ("1 web search"), if any. */
  const usageCell = (e: UsageEvent) => {
    const other = otherUsageText(formats, e.usage);
    const tokens = new Intl.NumberFormat('en-US').format(e.tokens.total);
    return (e.tokens.total > 0 || other.length === 0 ? [tokens, ...other] : other).join('');
  };

  /** The rows the API's pages should show, in their order. */
  const rowsOf = (...pages: EventsPage[]) =>
    pages
      .flatMap((p) => p.data)
      .map((e) => [
        new Intl.DateTimeFormat('en-US', { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(
          new Date(e.occurred_at),
        ),
        `${e.member?.label || 'Unknown user'}${e.member?.email ?? ''}`,
        `${e.feature}${e.surface_label ?? ''}${e.error ? `Failed: ${e.error}` : ''}`,
        `${providerName(e.provider)} · ${e.model}`,
        usageCell(e),
        formats.credits(e.credits),
        formats.money(e.cost, e.currency),
        `input ${e.tokens.input}, output ${e.tokens.output}, cache read ${e.tokens.cache_read}, cache write ${e.tokens.cache_write}`,
      ]);

  /** The events of `pages` are distinct: a row shown twice or left out changes the list shown. */
  const expectDistinct = (...pages: EventsPage[]) => {
    const ids = pages.flatMap((p) => p.data.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(rowsOf(...pages).map((row) => row.join('|'))).size).toBe(ids.length);
  };

  it('appends the next pages of recent activity in the API order, busy while a page loads', async () => {
    await page.goto(`${web.url}/usage`);
    const query = { range: '30d' };
    const first = await events(query);
    expect(first.data.length).toBe(PAGE);
    expect(first.has_more).toBe(true);
    await eventually(shownRows).toEqual(rowsOf(first));
    await eventually(() => moreButton().textContent()).toBe('Load more');

    const slow = await holdNextRequest(page, isEventsPage);
    await moreButton().click();
    // The page asks from the first page's cursor and says it is loading until the answer is in.
    expect((await slow.query()).get('cursor')).toBe(first.next_cursor);
    await eventually(() => moreButton().textContent()).toBe('Loading…');
    expect(await moreButton().isDisabled()).toBe(true);
    expect(await shownRows()).toEqual(rowsOf(first));
    await slow.release();
    const second = await events({ ...query, cursor: first.next_cursor! });
    expect(second.has_more).toBe(true);
    await eventually(shownRows).toEqual(rowsOf(first, second));
    await eventually(() => moreButton().textContent()).toBe('Load more');
    expect(await moreButton().isEnabled()).toBe(true);

    // The third page follows the second's cursor, appended after it.
    const slower = await holdNextRequest(page, isEventsPage);
    await moreButton().click();
    expect((await slower.query()).get('cursor')).toBe(second.next_cursor);
    await eventually(() => moreButton().textContent()).toBe('Loading…');
    expect(await moreButton().isDisabled()).toBe(true);
    expect(await shownRows()).toEqual(rowsOf(first, second));
    await slower.release();
    const third = await events({ ...query, cursor: second.next_cursor! });
    expect(third.data.length).toBeGreaterThan(0);
    await eventually(shownRows).toEqual(rowsOf(first, second, third));
    expectDistinct(first, second, third);
    if (third.has_more) await eventually(() => moreButton().isEnabled()).toBe(true);
    else await activity().getByText('End of activity for this period').waitFor();
  });

  it('starts over on a new filter or range, and leaves out a late page of the old list', async () => {
    // The member with the most calls in 30 days: more than a page of activity of their own.
    const byMember = await http('/usage/breakdown', { range: '30d', by: 'member', limit: '100' });
    const busiest = [...byMember.data].sort((a: any, b: any) => b.calls - a.calls)[0];
    expect(busiest.calls).toBeGreaterThan(PAGE);

    await page.goto(`${web.url}/usage`);
    const all = { range: '30d' };
    const all1 = await events(all);
    await eventually(shownRows).toEqual(rowsOf(all1));
    await moreButton().click();
    const all2 = await events({ ...all, cursor: all1.next_cursor! });
    expect(all2.has_more).toBe(true);
    await eventually(shownRows).toEqual(rowsOf(all1, all2));

    // The third page of all users is still on its way when the user filter changes.
    const late = await holdNextRequest(page, isEventsPage);
    await moreButton().click();
    expect((await late.query()).get('cursor')).toBe(all2.next_cursor);
    await eventually(() => moreButton().textContent()).toBe('Loading…');
    const filter = page.getByLabel('User', { exact: true });
    await filter.selectOption(busiest.key);
    const mine = { range: '30d', member: busiest.key };
    const mine1 = await events(mine);
    expect(mine1.has_more).toBe(true);
    // Only the new first page: none of the old list's rows, and not busy with the old list's page.
    await eventually(shownRows).toEqual(rowsOf(mine1));
    expect(await moreButton().textContent()).toBe('Load more');
    expect(await moreButton().isEnabled()).toBe(true);

    // The old list's page comes in late: it is not added to the new list.
    await late.release();
    expect(await shownRows()).toEqual(rowsOf(mine1));
    // The new list's next page follows its own cursor, right after its first page.
    const next = await holdNextRequest(page, isEventsPage);
    await moreButton().click();
    expect((await next.query()).get('cursor')).toBe(mine1.next_cursor);
    expect((await next.query()).get('member')).toBe(busiest.key);
    await next.release();
    const mine2 = await events({ ...mine, cursor: mine1.next_cursor! });
    await eventually(shownRows).toEqual(rowsOf(mine1, mine2));
    expectDistinct(mine1, mine2);

    // Another range starts over again, at its own first page.
    await page.getByRole('tab', { name: '7 days' }).click();
    const week1 = await events({ range: '7d', member: busiest.key });
    expect(week1.data.length).toBeGreaterThan(0);
    await eventually(shownRows).toEqual(rowsOf(week1));
    if (week1.has_more) expect(await moreButton().textContent()).toBe('Load more');
  });

  it('goes on from the new first page when Load more is clicked while a pushed change reloads the list', async () => {
    await page.goto(`${web.url}/usage`);
    const query = { range: '30d' };
    const before = await events(query);
    await eventually(shownRows).toEqual(rowsOf(before));
    // Let the page's stream start watching (3 s after the overview opens).
    await page.waitForTimeout(4500);
    const reload = await holdNextRequest(page, (url) => isEventsPage(url) && !url.searchParams.has('cursor'));
    const id = await demoCallNow(web);
    // The pushed change reloads the first page; the reader clicks Load more while it is on its way.
    await reload.query();
    await moreButton().click();
    await eventually(() => moreButton().textContent()).toBe('Loading…');
    expect(await shownRows()).toEqual(rowsOf(before));
    const next = await holdNextRequest(page, isEventsPage);
    await reload.release();
    const after1 = await events(query);
    expect(after1.data[0]?.id).toBe(id);
    // The click is kept: the next page follows the new first page's cursor, not the old one's.
    expect((await next.query()).get('cursor')).toBe(after1.next_cursor);
    await next.release();
    const after2 = await events({ ...query, cursor: after1.next_cursor! });
    await eventually(shownRows).toEqual(rowsOf(after1, after2));
    expectDistinct(after1, after2);
    expect(await activity().getByText('New activity since this list was loaded.').count()).toBe(0);
  });

  it('names in the trend tooltip the exact period a custom range is compared with', async () => {
    await page.goto(`${web.url}/usage`);
    await page.getByTestId('kpi-calls').waitFor();
    const when = new Intl.DateTimeFormat('en-US', { timeZone, dateStyle: 'medium', timeStyle: 'short' });
    const isoDay = (at: number) => new Date(at).toISOString().slice(0, 10);
    // The last days of October a year ago hold the end of summer time in Berlin (the last Sunday
    // of October): that range is 14 days and an hour long, compared with the 14 whole days before.
    const year = new Date().getUTCFullYear() - 1;
    const ranges = [
      [isoDay(Date.now() - 20 * DAY_MS), isoDay(Date.now() - 6 * DAY_MS)],
      [`${year}-10-20`, `${year}-11-02`],
    ] as const;
    await page.getByRole('tab', { name: 'Custom' }).click();
    for (const [from, to] of ranges) {
      // Through the range picker, as a user picks dates.
      await page.getByLabel('From', { exact: true }).fill(from);
      await page.getByLabel('To', { exact: true }).fill(to);
      const summary = await http('/usage/summary', { range: 'custom', from, to });
      const days = Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS) + 1;
      const { start, previous_start, previous_end } = summary.range;
      expect(Date.parse(previous_end)).toBe(Date.parse(start));
      const trend = page.getByTestId('kpi-trend');
      await eventually(() => trend.textContent()).toBe(`${summary.trend.label} vs previous ${days} days`);
      await eventually(() => trend.getAttribute('title')).toBe(
        `Against the ${days} days just before this period: ` +
          `${when.format(new Date(previous_start))} to ${when.format(new Date(previous_end))}`,
      );
    }
  });
});
