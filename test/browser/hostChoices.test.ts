/**
 * What a host app chooses for the usage page, in a real browser: the period tabs and the selected one
 * from the page URL (kept there with the user across a reload, and passed through an embed link), the
 * provider consoles a BYOK org is pointed to (those it uses), and the alert threshold and allowed limit
 * as two ticks on the month's bar, both still drawn once spend passes the limit.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFormats } from '../../web/src/format.ts';
import { spendText } from '../../web/src/units.ts';
import {
  embedLink,
  formatCount,
  launchBrowser,
  openPage,
  ownerPage,
  SCREENS_DIR,
  startWebTally,
  type WebTally,
} from './support.ts';

describe("the host app's choices on the usage page", () => {
  let web: WebTally;
  let browser: Browser;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 40 }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const tabLabels = (page: Page) => page.getByRole('tab').allTextContents();
  const selectedTab = (page: Page) => page.getByRole('tab', { selected: true }).textContent();
  const query = (page: Page) => new URL(page.url()).searchParams;

  /** A new org with an owner, and a way to send the owner's usage now (on gpt-4o unless told). */
  async function orgWithOwner(body: Record<string, unknown>) {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Host Choices', currency: 'USD', timezone: 'UTC', ...body },
    });
    const orgId = org.body.id as string;
    await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: 'owner-1', name: 'Owner One', role: 'owner' },
    });
    let sent = 0;
    const ingest = async (usage: Record<string, number>, model = { provider: 'openai', model: 'gpt-4o' }) => {
      sent += 1;
      const answer = await web.tally.call('POST', '/v1/events', {
        body: {
          events: [
            {
              id: `host-choice-${sent}`,
              org_id: orgId,
              member: 'owner-1',
              feature: 'Chat',
              ...model,
              occurred_at: new Date().toISOString(),
              usage,
            },
          ],
        },
      });
      expect(answer.body.results[0].status).toBe('accepted');
    };
    return { orgId, ingest };
  }

  it('shows the period tabs the URL lists, selects its period, and keeps the choice across a reload', async () => {
    const { page } = await ownerPage(browser, web);
    const api = (path: string) => web.tally.call('GET', `/v1/orgs/${web.orgId}${path}`).then((r) => r.body);
    const org = await api('');
    const formats = createFormats(org.currency, org.timezone, 'en-US');
    const kpisMatch = async (summaryQuery: string) => {
      const summary = await api(`/usage/summary?${summaryQuery}`);
      await expect.poll(() => page.getByTestId('kpi-calls').textContent()).toBe(formatCount(summary.calls));
      await expect
        .poll(() => page.getByTestId('kpi-spent').textContent())
        .toBe(spendText(formats, summary.unit, summary));
      return summary;
    };

    await page.goto(`${web.url}/usage?periods=this_month,last_month`);
    await expect.poll(() => tabLabels(page)).toEqual(['This month', 'Last month']);
    expect(await selectedTab(page)).toBe('This month');
    await kpisMatch('range=mtd');

    await page.goto(`${web.url}/usage?periods=this_month,last_month&period=last_month`);
    await expect.poll(() => selectedTab(page)).toBe('Last month');
    expect(await tabLabels(page)).toEqual(['This month', 'Last month']);
    expect((await kpisMatch('range=last_month')).calls).toBeGreaterThan(0);

    // The reader's tab and user go to the URL beside the host's list, so a reload keeps them.
    await page.getByRole('tab', { name: 'This month' }).click();
    await expect.poll(() => query(page).get('period')).toBe('this_month');
    const members = (await api('/members?limit=100')).data as { id: string; name: string }[];
    const member = members.find((m) => m.name === 'Lukas Schneider')!;
    await page.getByLabel('User', { exact: true }).selectOption(member.id);
    await expect.poll(() => query(page).get('member')).toBe(member.id);
    expect(query(page).get('periods')).toBe('this_month,last_month');
    await page.reload();
    await expect.poll(() => selectedTab(page)).toBe('This month');
    expect(await tabLabels(page)).toEqual(['This month', 'Last month']);
    await expect.poll(() => page.getByLabel('User', { exact: true }).inputValue()).toBe(member.id);
    await kpisMatch(`range=mtd&member=${member.id}`);

    // Another page and the menu's way back lead to the overview as the reader left it.
    await page.getByRole('link', { name: 'Limits', exact: true }).click();
    await page.getByRole('heading', { name: 'Budgets' }).waitFor();
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await expect.poll(() => tabLabels(page)).toEqual(['This month', 'Last month']);
    expect(await selectedTab(page)).toBe('This month');
    expect(query(page).get('member')).toBe(member.id);

    // Names it does not know are left out; with none left, the default tabs and period show.
    await page.goto(`${web.url}/usage?periods=24h,weekly,7d,30d&period=7d`);
    await expect.poll(() => tabLabels(page)).toEqual(['24 hours', '7 days', '30 days']);
    expect(await selectedTab(page)).toBe('7 days');
    await page.goto(`${web.url}/usage?periods=nonsense&period=nonsense`);
    const cycleTab = org.billing_cycle_anchor.endsWith('-01') ? [] : ['This cycle'];
    await expect
      .poll(() => tabLabels(page))
      .toEqual(['24 hours', '7 days', '30 days', 'This month', ...cycleTab, 'Last month', 'Custom']);
    expect(await selectedTab(page)).toBe('30 days');
    await kpisMatch('range=30d');
    await page.context().close();
  });

  it('takes the period choices from an embed link, beside its token', async () => {
    const page = await openPage(browser);
    const { url } = await embedLink(web, 'viewer');
    await page.goto(`${url}&locale=en-US&periods=24h,7d,30d&period=24h`);
    await expect.poll(() => tabLabels(page)).toEqual(['24 hours', '7 days', '30 days']);
    expect(await selectedTab(page)).toBe('24 hours');
    // The token left the address; the choices stay in it for a reload.
    expect(page.url()).not.toContain('tally_em_');
    expect(query(page).get('periods')).toBe('24h,7d,30d');
    await page.getByRole('tab', { name: '7 days' }).click();
    await expect.poll(() => query(page).get('period')).toBe('7d');
    await page.reload();
    await expect.poll(() => selectedTab(page)).toBe('7 days');
    await page.context().close();
  });

  it('links a BYOK org to the consoles of the providers it uses only, and to all while it uses none', async () => {
    const anthropicOnly = await orgWithOwner({ billing_mode: 'byok' });
    await anthropicOnly.ingest(
      { input_tokens: 2_000, output_tokens: 500 },
      { provider: 'anthropic', model: 'claude-3-5-sonnet' },
    );
    const page = await openPage(browser);
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId: anthropicOnly.orgId })).url);
    const anthropic = page.getByRole('link', { name: 'Anthropic usage' });
    await anthropic.waitFor();
    expect(await anthropic.getAttribute('href')).toBe('https://console.anthropic.com/settings/usage');
    await expect.poll(() => page.getByRole('link', { name: 'OpenAI usage' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Google Cloud billing' }).count()).toBe(0);

    const unused = await orgWithOwner({ billing_mode: 'byok' });
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId: unused.orgId })).url);
    await expect
      .poll(() => page.locator('main li a').allTextContents())
      .toEqual(['OpenAI usage', 'Anthropic usage', 'Google Cloud billing']);
    await page.context().close();
  });

  it('draws the alert threshold and the allowed limit as two ticks, both still on the bar past the limit', async () => {
    const { orgId, ingest } = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '0.5', allowed_limit: '1' },
    });
    const limits = () => web.tally.call('GET', `/v1/orgs/${orgId}/limits`).then((r) => r.body);
    // gpt-4o: USD 10 per million output tokens x markup 1.5, so USD 0.60 for 40 000.
    await ingest({ output_tokens: 40_000 });
    expect(await limits()).toMatchObject({ spent: '0.6', status: 'alert' });
    const page = await openPage(browser);
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
    const bar = page.getByRole('meter', { name: 'Allowed limit used' });
    const left = async (tick: string) => {
      const style = (await bar.locator(tick).getAttribute('style')) ?? '';
      return Number(style.match(/left: ([\d.]+)%/)?.[1]);
    };
    await bar.waitFor();
    expect(await bar.locator('.tick').count()).toBe(2);
    expect(await left('.tick-alert')).toBe(50);
    expect(await left('.tick-limit')).toBe(100);
    expect(await bar.locator('.tick-limit').getAttribute('title')).toBe('Allowed limit: $1.00');
    expect(await bar.getAttribute('aria-valuenow')).toBe('60');
    expect(await bar.getAttribute('aria-valuetext')).toBe(
      '$0.60 of the $1.00 allowed limit, alert threshold $0.50',
    );
    expect(await page.locator('.allowance', { has: bar }).locator('.allowance-legend').textContent()).toBe(
      ' Alert threshold: $0.50 Allowed limit: $1.00',
    );

    // Past the limit the bar runs to the spend: both ticks stay inside it, at their share of it.
    await ingest({ output_tokens: 40_000 });
    expect(await limits()).toMatchObject({ spent: '1.2', status: 'exceeded' });
    await page.reload();
    await expect.poll(() => bar.getAttribute('aria-valuenow')).toBe('120');
    expect(await bar.locator('.tick').count()).toBe(2);
    expect(await left('.tick-alert')).toBeCloseTo((0.5 / 1.2) * 100, 3);
    expect(await left('.tick-limit')).toBeCloseTo((1 / 1.2) * 100, 3);
    expect(await bar.locator('.seg').getAttribute('style')).toContain('width: 100%');
    expect(await bar.getAttribute('aria-valuetext')).toBe(
      '$1.20 of the $1.00 allowed limit, alert threshold $0.50',
    );
    await page.locator('.allowance.over-limit', { has: bar }).screenshot({
      path: `${SCREENS_DIR}/allowance-past-limit.png`,
    });
    await page.context().close();
  });
});
