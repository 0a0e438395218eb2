/**
 * The overview's filters reach the daily breakdown and the day it opens, the forecast prices its
 * projections, and members are named as the usage pages name them (members page, budgets), in a
 * real browser: every figure as the API gives it for the same month and user.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUnits, parseUnits } from '../../src/domain/money.ts';
import { createFormats, type Formats } from '../../web/src/format.ts';
import { spendAndMoney } from '../../web/src/units.ts';
import { demoOrgGet, launchBrowser, ownerPage, screenshot, startWebTally, type WebTally } from './support.ts';

/** A host app user known only by the events it sent: its member has no name. */
const PROBE_USER = 'u_filter_probe';
/** A named member who has been removed. */
const LEAVER_EMAIL = 'rita.leaver@example.com';

interface DailyAnswer {
  month: string;
  unit: 'credits' | 'usd' | 'tokens';
  data: { date: string; credits: string; cost: string; calls: number }[];
}

describe('filters and member labels in the browser', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let formats: Formats;
  let probeId: string;

  const usage = (path: string) => demoOrgGet(web, path);
  const panel = (title: string) => page.getByRole('region', { name: title });
  const rowTexts = (title: string) =>
    panel(title)
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)));
  /** The daily breakdown's rows as the overview shows them: the days with usage, latest first. */
  const dailyRows = (daily: DailyAnswer) =>
    daily.data
      .filter((day) => day.calls > 0)
      .reverse()
      .map((day) => [
        formats.day(day.date),
        spendAndMoney(formats, daily.unit, day),
        formats.count(day.calls),
      ]);

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 40 }), launchBrowser()]);
    const org = await usage('');
    formats = createFormats(org.currency, org.timezone, 'en-US');
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        // Another user's call beside the probe user's two, so their day differs from everyone's.
        events: [PROBE_USER, PROBE_USER, 'u_1001'].map((member, n) => ({
          id: `probe-${n}`,
          org_id: web.orgId,
          member,
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: new Date(Date.now() - 60_000).toISOString(),
          usage: { input_tokens: 2_000, output_tokens: 1_000 },
        })),
      },
    });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual(Array(3).fill('accepted'));
    probeId = (await usage('/members?limit=1000')).data.find(
      (m: { external_id: string }) => m.external_id === PROBE_USER,
    ).id;
    const leaver = await web.tally.call('POST', `/v1/orgs/${web.orgId}/members`, {
      body: { external_id: 'u_leaver', name: 'Rita Leaver', email: LEAVER_EMAIL },
    });
    await web.tally.call('DELETE', `/v1/orgs/${web.orgId}/members/${leaver.body.id}`);
    // Signed in after the events, so the user filter lists the probe user.
    ({ page } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  it("lists last month's days under Last month", async () => {
    const thisMonth = (await usage('/usage/daily')) as DailyAnswer;
    const [year, month] = thisMonth.month.split('-').map(Number);
    const previous = new Date(Date.UTC(year!, month! - 2, 1)).toISOString().slice(0, 7);
    const lastMonth = (await usage(`/usage/daily?month=${previous}`)) as DailyAnswer;
    expect(dailyRows(lastMonth).length).toBeGreaterThan(0);

    await page.getByRole('tab', { name: 'Last month' }).click();
    const title = `Daily breakdown, ${formats.month(previous)}`;
    await expect.poll(() => rowTexts(title)).toEqual(dailyRows(lastMonth));
    await page.getByRole('tab', { name: '30 days' }).click();
    await expect.poll(() => rowTexts('Daily breakdown this month')).toEqual(dailyRows(thisMonth));
  });

  it("follows the chosen user, and the day it opens shows that user's entries", async () => {
    const everyone = (await usage('/usage/daily')) as DailyAnswer;
    const theirs = (await usage(`/usage/daily?member=${probeId}`)) as DailyAnswer;
    expect(dailyRows(theirs)).not.toEqual(dailyRows(everyone));

    await page.getByLabel('User', { exact: true }).selectOption(probeId);
    await expect.poll(() => rowTexts('Daily breakdown this month')).toEqual(dailyRows(theirs));

    await panel('Daily breakdown this month').locator('tbody a').first().click();
    await page.getByRole('heading', { name: /Daily detail/ }).waitFor();
    const url = new URL(page.url());
    expect(url.searchParams.get('member')).toBe(probeId);
    const date = url.pathname.split('/').pop();
    const day = await usage(`/usage/days/${date}?member=${probeId}`);
    const allOfDay = await usage(`/usage/days/${date}`);
    expect(allOfDay.total.calls).toBeGreaterThan(day.total.calls);
    const total = page.locator('p', { hasText: 'Total:' });
    const { credits, cost, calls } = day.total;
    await expect
      .poll(() => total.textContent())
      .toBe(
        `Total: ${formats.credits(credits)} credits (${formats.money(cost, day.currency)}), ${formats.count(calls)} calls`,
      );
    await page.getByText("One user's usage, as chosen on the overview.").waitFor();
    await screenshot(page, 'daily-one-user');
  });

  it('shows each projection of the forecast in money beside its credits', async () => {
    // Compared with the answer the page itself got: a forecast moves with the clock between reads.
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/usage/forecast'));
    await page.goto(`${web.url}/usage`);
    const forecast = await (await answered).json();
    expect(forecast.unit).toBe('credits');
    const cells = (p: Record<string, { amount: string; cost: string }>) =>
      [p.conservative!, p.likely!, p.aggressive!].map(
        (x) => `${formats.credits(x.amount)}${formats.money(x.cost, forecast.currency)}`,
      );
    await expect
      .poll(() => rowTexts('Forecast'))
      .toEqual([
        [`End of ${formats.month(forecast.end_of_month.month)}`, ...cells(forecast.end_of_month)],
        ['Next 30 days', ...cells(forecast.next_30_days)],
      ]);
    const likely = panel('Forecast').locator('tbody tr').first().locator('td .muted').nth(1);
    expect(await likely.textContent()).toMatch(/^€[\d,]+\.\d{2,4}$/);
    await panel('Forecast').screenshot({ path: 'test-artifacts/screens/forecast-money.png' });
  });

  it("names an unnamed member by the host app's user id, and a removed one as Unknown user", async () => {
    await page.goto(`${web.url}/usage/settings`);
    const members = panel('Members and roles');
    await expect.poll(() => members.locator('tbody th').allTextContents()).toContain(PROBE_USER);
    const leaver = members.locator('tbody tr', { hasText: LEAVER_EMAIL });
    expect(await leaver.locator('th').textContent()).toBe('Unknown userremoved');
    expect(await members.textContent()).not.toContain('Rita Leaver');
  });

  it("names a member budget's member", async () => {
    const lukas = (await usage('/members?limit=1000')).data.find(
      (m: { name: string }) => m.name === 'Lukas Schneider',
    );
    await web.tally.call('POST', `/v1/orgs/${web.orgId}/budgets`, {
      body: { name: 'Lukas cap', scope: { kind: 'member', id: lukas.id }, amount: '40' },
    });
    await page.goto(`${web.url}/usage/limits`);
    const row = panel('Budgets').locator('tbody tr', { hasText: 'Lukas cap' });
    await expect.poll(() => row.locator('td').first().textContent()).toBe('Member: Lukas Schneider');
  });

  it("says how far a budget's spend has gone: Critical from 95 % of its amount", async () => {
    const budget = (name: string, amount: string) =>
      web.tally.call('POST', `/v1/orgs/${web.orgId}/budgets`, {
        body: { name, scope: { kind: 'member', id: probeId }, amount, enforcement: 'soft' },
      });
    const roomy = await budget('Probe roomy', '100000');
    expect(roomy.body.current_period.status).toBe('ok');
    // An amount the probe user's spend is about 96 % of (rounded down to the millionth).
    const spent = parseUnits(roomy.body.current_period.spent, 6);
    expect(spent).toBeGreaterThan(0n);
    const amount = formatUnits((spent * 100n) / 96n, 6);
    const tight = await budget('Probe tight', amount);
    expect(tight.body.current_period.status).toBe('critical');
    await page.goto(`${web.url}/usage/limits`);
    const spentCell = (name: string) =>
      panel('Budgets').locator('tbody tr', { hasText: name }).locator('td.num').nth(1);
    await expect.poll(() => spentCell('Probe tight').locator('.tag').textContent()).toBe('Critical');
    expect(await spentCell('Probe roomy').locator('.tag').count()).toBe(0);
  });

  it('shows in the activity log what a call counted besides tokens', async () => {
    const org = await usage('');
    const price = (component: string, amount: string, unit: string) =>
      web.tally.call('POST', '/v1/prices', {
        body: {
          provider: 'acme',
          model: 'acme-image-1',
          component,
          price: amount,
          unit,
          currency: org.currency,
          org_id: web.orgId,
        },
      });
    expect((await price('images', '0.04', 'per_image')).status).toBe(201);
    expect((await price('input', '0.002', 'per_1k_tokens')).status).toBe(201);
    // A price applies from its creation: the events come after the process next reads prices.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const picture = (id: string, feature: string, counts: Record<string, number>) => ({
      id,
      org_id: web.orgId,
      member: PROBE_USER,
      feature,
      provider: 'acme',
      model: 'acme-image-1',
      occurred_at: new Date().toISOString(),
      usage: counts,
    });
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [
          picture('pictures-only', 'Image generation', { images: 3 }),
          picture('prompt-and-picture', 'Image edit', { input_tokens: 1_200, images: 1 }),
        ],
      },
    });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted']);
    await page.goto(`${web.url}/usage`);
    const usageCell = (feature: string) =>
      panel('Recent activity').locator('tbody tr', { hasText: feature }).first().locator('td.num').first();
    await expect.poll(() => usageCell('Image generation').textContent()).toBe('3 images');
    expect(await usageCell('Image edit').textContent()).toBe('1,2001 image');
    expect(await usageCell('Image edit').locator('.muted').textContent()).toBe('1 image');
  });

  it("rounds a day's entries together, so those shown add up to the total shown", async () => {
    const org = await usage('');
    // Two entries of 1.335 each: rounded on their own they show 1.34 + 1.34 under a total of 2.67.
    // Then one of 0.00685, below one unit.
    const prices: [string, string, string][] = [
      ['rounding-probe', 'input', '1.335'],
      ['rounding-probe', 'output', '1.335'],
      ['rounding-probe-small', 'input', '0.00685'],
    ];
    for (const [model, component, price] of prices) {
      const set = await web.tally.call('POST', '/v1/prices', {
        body: {
          provider: 'inhouse',
          model,
          component,
          price,
          unit: 'per_1k_tokens',
          currency: org.currency,
          org_id: web.orgId,
        },
      });
      expect(set.status).toBe(201);
    }
    // A price applies from its creation: the event comes after the process next reads prices.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const at = new Date();
    const send = async (model: string, usage: Record<string, number>) => {
      const sent = await web.tally.call('POST', '/v1/events', {
        body: {
          events: [
            {
              id: model,
              org_id: web.orgId,
              member: 'u_rounding',
              feature: 'Chat',
              provider: 'inhouse',
              model,
              occurred_at: at.toISOString(),
              usage,
            },
          ],
        },
      });
      expect(sent.body.results[0].status).toBe('accepted');
    };
    await send('rounding-probe', { input_tokens: 1_000, output_tokens: 1_000 });
    const member = (await usage('/members?limit=1000')).data.find(
      (m: { external_id: string }) => m.external_id === 'u_rounding',
    ).id;
    // The day of that user alone (the user filter), in the org's zone.
    const date = new Intl.DateTimeFormat('en-CA', { timeZone: org.timezone }).format(at);
    await page.goto(`${web.url}/usage/daily/${date}?member=${member}`);
    await expect
      .poll(() => page.locator('p', { hasText: 'Total:' }).textContent())
      .toContain(formats.money('2.67'));
    const costs = await page
      .locator('table tbody tr td:last-child')
      .evaluateAll((cells) => cells.map((cell) => cell.firstChild?.textContent));
    expect(costs.sort()).toEqual([formats.money('1.33'), formats.money('1.34')]);

    // With an entry below one unit, the total and every entry are shown to four decimals: the
    // entry's €0.0069 beside €1.34 + €1.33 under €2.68 would not add up.
    await send('rounding-probe-small', { input_tokens: 1_000 });
    await page.reload();
    const shown = formats.moneyParts('2.67685', ['1.335', '1.335', '0.00685'], org.currency);
    await expect.poll(() => page.locator('p', { hasText: 'Total:' }).textContent()).toContain(shown.total);
    const withSmall = await page
      .locator('table tbody tr td:last-child')
      .evaluateAll((cells) => cells.map((cell) => cell.firstChild?.textContent ?? ''));
    expect(withSmall.sort()).toEqual([...shown.parts].sort());
    // Read back as numbers of ten-thousandths, the entries add up to the total shown.
    const units = (text: string) => parseUnits(text.replace(/[^0-9.]/g, ''), 4);
    expect(withSmall.reduce((sum, text) => sum + units(text), 0n)).toBe(units(shown.total));
    expect(formatUnits(units(shown.total), 4)).toBe('2.6769');
  });
});
