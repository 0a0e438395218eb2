/**
 * The allowance bar and the in-editor usage bar in a real browser: a credits org's "used this
 * cycle" counts this cycle only, and a BYOM org's bars show its month's spend against its cap.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  embedLink,
  launchBrowser,
  openPage,
  startHostPage,
  startWebTally,
  type WebTally,
} from './support.ts';

describe('allowance bars', () => {
  let web: WebTally;
  let browser: Browser;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.02, days: 3 }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const newPage = () => openPage(browser);

  async function orgWithOwner(body: Record<string, unknown>) {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Bars', currency: 'USD', timezone: 'UTC', ...body },
    });
    await web.tally.call('POST', `/v1/orgs/${org.body.id}/members`, {
      body: { external_id: 'owner-1', name: 'Owner One', role: 'owner' },
    });
    return org.body.id as string;
  }

  const ingest = async (orgId: string, id: string, at: Date, outputTokens: number) => {
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [
          {
            id,
            org_id: orgId,
            member: 'owner-1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: at.toISOString(),
            usage: { output_tokens: outputTokens },
          },
        ],
      },
    });
    expect(sent.body.results[0].status).toBe('accepted');
  };

  /** The page showing a host app whose header holds the usage bar for `token`; close() ends both. */
  async function openUsageBar(page: Page, token: string) {
    const host = await startHostPage(`<!doctype html><title>Editor</title>
      <header><tally-usage-bar token="${token}"></tally-usage-bar></header>
      <script type="module" src="${web.url}/usage-bar.js"></script>`);
    await page.goto(host.url);
    return {
      frame: page.frameLocator('tally-usage-bar iframe'),
      close: async () => {
        await host.close();
        await page.context().close();
      },
    };
  }

  it("counts only this cycle's usage as used this cycle, though earlier usage drew from its grants", async () => {
    const orgId = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    const { cycle } = (await web.tally.call('GET', `/v1/orgs/${orgId}/balance`)).body;
    // Dated an hour before this cycle began, within the 35 days ingest accepts: it draws from the
    // current grants (consumed) but is last cycle's usage.
    await ingest(orgId, 'before', new Date(Date.parse(cycle.start) - 3_600_000), 40_000);
    await ingest(orgId, 'now', new Date(), 10_000);
    const balance = (await web.tally.call('GET', `/v1/orgs/${orgId}/balance`)).body;
    expect(Number(balance.consumed_credits)).toBeGreaterThan(Number(balance.cycle.spent_credits));
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
    const head = page.locator('.allowance-head');
    await expect
      .poll(() => head.textContent())
      .toContain(
        `${new Intl.NumberFormat('en-US').format(balance.cycle.spent_credits)} credits used this cycle`,
      );
    await page.context().close();
  });

  it('shows what each budget spent in its current period, warned from 75 %', async () => {
    const orgId = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    const members = (await web.tally.call('GET', `/v1/orgs/${orgId}/members`)).body.data;
    const created = await web.tally.call('POST', `/v1/orgs/${orgId}/budgets`, {
      body: {
        name: 'Owner cap',
        scope: { kind: 'member', id: members[0].id },
        amount: '1',
        enforcement: 'soft',
      },
    });
    expect(created.status).toBe(201);
    await ingest(orgId, 'budgeted', new Date(), 60_000);
    const [budget] = (await web.tally.call('GET', `/v1/orgs/${orgId}/budgets`)).body.data;
    const spent = Number(budget.current_period.spent);
    expect(spent).toBeGreaterThanOrEqual(0.75);
    // Budgets warn from 75 %, then say caution from 90 % and critical from 95 % (exceeded from 100 %).
    const status =
      spent >= 1 ? 'exceeded' : spent >= 0.95 ? 'critical' : spent >= 0.9 ? 'caution' : 'warning';
    expect(budget.current_period.status).toBe(status);
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
    await page.getByRole('link', { name: 'Limits', exact: true }).first().click();
    const row = page.getByRole('row', { name: /Owner cap/ });
    const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(spent);
    await expect.poll(() => row.textContent()).toContain(`${money} (${Math.floor(spent * 100)}%)`);
    expect(await row.locator('td.tone-warn, td.tone-error').count()).toBe(1);
    await page.context().close();
  });

  it("shows a credits org's month against its alert threshold and allowed limit on a bar of its own", async () => {
    const orgId = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '0.5', allowed_limit: '1' },
    });
    // gpt-4o: USD 10 per million output tokens x markup 1.5, so USD 0.60 (60 credits of USD 0.01).
    await ingest(orgId, 'spend', new Date(), 40_000);
    const limits = (await web.tally.call('GET', `/v1/orgs/${orgId}/limits`)).body;
    expect(limits).toMatchObject({ spent: '0.6', status: 'alert' });
    const balance = (await web.tally.call('GET', `/v1/orgs/${orgId}/balance`)).body;
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
    const heads = page.locator('.allowance-head');
    await expect
      .poll(() => heads.allTextContents())
      .toEqual([
        `60 credits used this cycle${new Intl.NumberFormat('en-US').format(balance.remaining_credits)} credits remaining`,
        '$0.60 spent this month$0.40 left of the $1.00 allowed limit',
      ]);
    // The credits bar measures credits granted, so the money limits tick on the month's bar only.
    const allowance = page.getByRole('meter', { name: 'Allowance used' });
    expect(await allowance.locator('.tick').count()).toBe(0);
    const month = page.getByRole('meter', { name: 'Allowed limit used' });
    expect(await month.getAttribute('aria-valuenow')).toBe('60');
    expect(await month.locator('.tick-alert').getAttribute('style')).toContain('left: 50%');
    expect(await page.locator('.allowance .note.warn').textContent()).toBe(
      'Spending has passed the alert threshold for this month.',
    );
    await page.context().close();
  });

  it("shows the month's spending against its limit in the monthly history", async () => {
    const orgId = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '0.5', allowed_limit: '1' },
    });
    // USD 0.60, as above.
    await ingest(orgId, 'spend', new Date(), 40_000);
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
    await page.getByRole('link', { name: 'Monthly history', exact: true }).first().click();
    const table = page.getByRole('table', { name: 'Monthly limit against spending' });
    await table.waitFor();
    const month = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'long', year: 'numeric' });
    expect(await table.locator('tbody tr').allTextContents()).toEqual([
      `${month.format(new Date())}$1.00$0.50$0.60 (60%)Past alert threshold`,
    ]);
    await page.context().close();
  });

  it('shows usage past every credit as overage, in credits and money, on the page and in the usage bar', async () => {
    const orgId = await orgWithOwner({ billing_mode: 'credits', plan_allowance_credits: '500' });
    // gpt-4o: 400 000 output tokens are 600 credits (USD 6.00): 100 past the 500 granted.
    await ingest(orgId, 'past-the-plan', new Date(), 400_000);
    const balance = (await web.tally.call('GET', `/v1/orgs/${orgId}/balance`)).body;
    expect(balance).toMatchObject({ overage_credits: '100', overage_amount: '1', available_credits: '0' });
    const { token, url } = await embedLink(web, 'owner', { member: 'owner-1', orgId });
    const page = await newPage();
    await page.goto(url);
    const legend = page.locator('.allowance-legend li');
    await expect
      .poll(() => legend.allTextContents())
      .toEqual([
        ' Monthly credits: 500 credits of 500 credits',
        ' Bonus and purchased credits: 0 credits of 0 credits',
        ' Overage: 100 credits ($1.00) used beyond the credits granted',
      ]);
    // Run out already: said as it is, not as running out "in 0 days".
    const left = balance.cycle.days_remaining;
    expect(balance.cycle).toMatchObject({ run_out_in_days: 0, runs_out_before_cycle_end: true });
    const cycleLeft =
      left === 0
        ? 'today is the last day of this cycle'
        : `${left === 1 ? '1 day is' : `${left} days are`} left in this cycle`;
    expect(await page.locator('.note.warn.banner').textContent()).toBe(
      `Your credits have run out, and ${cycleLeft}. Upgrade or top up`,
    );
    expect(
      await page.locator('.cycle-cards .card', { hasText: 'Run out in' }).locator('dd').textContent(),
    ).toBe('Run out');
    const bar = await openUsageBar(page, token);
    try {
      await expect
        .poll(() => bar.frame.locator('.usage-bar-text').textContent())
        .toBe('0 credits left · 100 over · 100% used');
    } finally {
      await bar.close();
    }
  });

  it("shows a BYOM org's month against its spend cap, on the page and in the usage bar", async () => {
    const orgId = await orgWithOwner({ billing_mode: 'byom' });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '0.5', allowed_limit: '1' },
    });
    // gpt-4o: USD 10 per million output tokens, so USD 0.30 at provider cost.
    await ingest(orgId, 'spend', new Date(), 30_000);
    const { token, url } = await embedLink(web, 'owner', { member: 'owner-1', orgId });
    const page = await newPage();
    await page.goto(url);
    const head = page.locator('.allowance-head');
    await expect
      .poll(() => head.textContent())
      .toBe('$0.30 spent this month$0.70 left of the $1.00 spend cap');
    expect(await page.getByRole('meter', { name: 'Spend cap used' }).getAttribute('aria-valuenow')).toBe(
      '30',
    );
    const bar = await openUsageBar(page, token);
    try {
      await expect
        .poll(() => bar.frame.locator('.usage-bar-text').textContent())
        .toBe('$0.70 left of the cap · 30% used');
      // Referrals and upgrades buy credits; a BYOM org has none to buy.
      expect(await bar.frame.getByRole('button').count()).toBe(0);
    } finally {
      await bar.close();
    }
  });
});
