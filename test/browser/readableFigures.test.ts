/**
 * Figures in words a customer reads, checked against what the API answers over HTTP: each alert's
 * type and scope by name with its spend against its limit, each feature's and model's share and money,
 * the share of spend a recommendation saves, the day a reached monthly limit resets, and an error rate
 * spike.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkProjectedRunOut } from '../../src/services/alerts/checkProjectedRunOut.ts';
import type { Ctx } from '../../src/services/context.ts';
import { createFormats, type Formats } from '../../web/src/format.ts';
import { OPERATOR_KEY } from '../support/harness.ts';
import {
  embedLink,
  launchBrowser,
  openPage,
  ownerPage,
  screenshot,
  startWebTally,
  type WebTally,
} from './support.ts';

describe('readable figures', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let ownerKey: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 35 }), launchBrowser()]);
    ({ page, key: ownerKey } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  /** A GET over HTTP on the listening Tally, as a client of the API sees it. */
  const get = async (path: string, key = OPERATOR_KEY): Promise<any> => {
    const res = await fetch(`${web.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const formatsOf = async (orgId: string) => {
    const org = await get(`/v1/orgs/${orgId}`);
    return createFormats(org.currency, org.timezone, 'en-US');
  };
  /** Percent as the app formats shares, from a percentage the API gives in percent to a tenth ('17.0'). */
  const percent = (value: string) =>
    new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 }).format(
      Number(value) / 100,
    );
  const panel = (heading: string) =>
    page.locator('section', { has: page.getByRole('heading', { name: heading, exact: true }) });

  /**
   * A credits org (500 plan credits, EUR 0.01 a credit) past its alert threshold, its allowed limit,
   * a member's budget and its plan allowance, with the run-out job run: every alert type but a
   * disabled webhook endpoint's (settingsWebhooks.test.ts has that one).
   */
  async function orgPastItsLimits(): Promise<{ orgId: string; name: string }> {
    const name = 'Research Lab';
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name, currency: 'EUR', timezone: 'Europe/Berlin', billing_mode: 'credits' },
    });
    const orgId = org.body.id as string;
    const member = await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: 'lab-1', name: 'Lab Owner', role: 'owner' },
    });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '3', allowed_limit: '4' },
    });
    const budget = await web.tally.call('POST', `/v1/orgs/${orgId}/budgets`, {
      body: { name: 'Research team', scope: { kind: 'member', id: member.body.id }, amount: '2' },
    });
    expect(budget.status).toBe(201);
    // gpt-4o: 10 000 output tokens are 13.8 credits (EUR 0.138); 37 of them are 510.6 credits.
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: Array.from({ length: 37 }, (_, i) => ({
          id: `lab-${i}`,
          org_id: orgId,
          member: 'lab-1',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: new Date().toISOString(),
          usage: { output_tokens: 10_000 },
        })),
      },
    });
    expect(sent.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    const jobs: Ctx = { ...web.tally, principal: { kind: 'operator', id: 'op_jobs' }, requestId: 'test' };
    await checkProjectedRunOut(jobs);
    return { orgId, name };
  }
  let pastLimits: Promise<{ orgId: string; name: string }> | undefined;
  const labOrg = () => {
    pastLimits ??= orgPastItsLimits();
    return pastLimits;
  };

  const openAsOwner = async (orgId: string, path: string) => {
    const link = await embedLink(web, 'owner', { member: 'lab-1', orgId });
    const embedded = await openPage(browser);
    await embedded.goto(`${link.url}&next=${encodeURIComponent(path)}`);
    return embedded;
  };

  it('names each alert and its scope in words, with the spend against the limit in the currency', async () => {
    const { orgId } = await labOrg();
    const f = await formatsOf(orgId);
    const alerts = (await get(`/v1/orgs/${orgId}/alerts?limit=100`)).data as {
      type: string;
      scope: string;
      threshold_percent: number;
      details: Record<string, string>;
      created_at: string;
    }[];
    expect(new Set(alerts.map((a) => a.type))).toEqual(
      new Set(['alert.threshold_crossed', 'quota.exceeded', 'credits.low', 'credits.projected_run_out']),
    );
    expect(new Set(alerts.map((a) => a.scope.split(':')[0]))).toEqual(
      new Set(['monthly_limit', 'alert_threshold', 'budget', 'plan_allowance', 'credits']),
    );
    const typeNames: Record<string, string> = {
      'alert.threshold_crossed': 'Threshold reached',
      'quota.exceeded': 'Limit reached, AI calls paused',
      'credits.low': 'Credits running low',
      'credits.projected_run_out': 'Credits to run out before the cycle ends',
    };
    const about = ({ scope, details: d }: (typeof alerts)[number]) => {
      const spentOfLimit = () =>
        `${f.money(d.spent_amount!, d.currency)} / ${f.money(d.limit_amount!, d.currency)}`;
      switch (scope.split(':')[0]) {
        case 'monthly_limit':
          return `Monthly limit (${spentOfLimit()})`;
        case 'alert_threshold':
          return `Alert threshold (${spentOfLimit()})`;
        case 'budget':
          return `Budget “Research team” (${spentOfLimit()})`;
        case 'plan_allowance':
          return `Plan allowance (${f.credits(d.used_credits!)} / ${f.credits(d.allowance_credits!)} credits)`;
        default:
          return `Credits (${f.credits(d.available_credits!)} credits left)`;
      }
    };

    const owner = await openAsOwner(orgId, '/usage/alerts');
    const rows = owner.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(alerts.length);
    const shown = await Promise.all(alerts.map((_, i) => rows.nth(i).locator('td').allTextContents()));
    expect(shown).toEqual(
      alerts.map((a) => [
        f.dateTime(a.created_at),
        typeNames[a.type],
        about(a),
        a.threshold_percent === 0 ? '—' : percent(String(a.threshold_percent)),
      ]),
    );
    // The figures as a reader checks them: EUR 5.106 spent of the EUR 4 limit, 500 of 500 plan credits.
    expect(shown.map((cells) => cells[2])).toEqual(
      expect.arrayContaining([
        'Monthly limit (€5.11 / €4.00)',
        'Budget “Research team” (€5.11 / €2.00)',
        'Plan allowance (500 / 500 credits)',
      ]),
    );
    expect(await owner.locator('tbody').textContent()).not.toMatch(/alert\.|quota\.|credits\.|monthly_limit/);
    await screenshot(owner, 'alerts-readable');
    await owner.context().close();
  });

  it("names the day a reached monthly limit resets, not the month's exclusive end", async () => {
    const { orgId, name } = await labOrg();
    const f = await formatsOf(orgId);
    const limits = await get(`/v1/orgs/${orgId}/limits`);
    expect(limits.status).toBe('exceeded');
    const dayOfMonth = new Intl.DateTimeFormat('en-US', { timeZone: f.timeZone, day: 'numeric' });
    expect(dayOfMonth.format(new Date(limits.period.end))).toBe('1');

    const owner = await openAsOwner(orgId, '/usage/quota');
    await expect
      .poll(() => owner.getByRole('alert').textContent())
      .toBe(
        `${name} has spent ${f.money(limits.spent, limits.currency)} this month and reached its allowed limit of ` +
          `${f.money(limits.allowed_limit, limits.currency)}. AI features that use credits are paused until the ` +
          `limit is raised or the new month begins on ${f.date(limits.period.end)}.`,
      );
    await owner.context().close();
  });

  it('tells an error rate spike in words: the share of calls that failed, of how many, against the usual', async () => {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Flaky Search', currency: 'EUR', timezone: 'UTC', billing_mode: 'credits' },
    });
    const orgId = org.body.id as string;
    await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: 'lab-1', name: 'Lab Owner', role: 'owner' },
    });
    const call = (id: string, ago: number, error: boolean) => ({
      id,
      org_id: orgId,
      member: 'lab-1',
      feature: 'Search',
      provider: 'openai',
      model: 'gpt-4o-mini',
      occurred_at: new Date(Date.now() - ago).toISOString(),
      usage: { input_tokens: 100, output_tokens: 20 },
      ...(error ? { metadata: { error: 'upstream_503' } } : {}),
    });
    // 30 days of 10 calls that never fail, then 10 of 20 failing today.
    const events = [
      ...Array.from({ length: 300 }, (_, i) =>
        call(`d${i}`, (Math.floor(i / 10) + 1) * 86_400_000 + i * 1000, false),
      ),
      ...Array.from({ length: 20 }, (_, i) => call(`t${i}`, 60_000 + i * 1000, i % 2 === 1)),
      // And a spend spike today, on a new feature.
      ...Array.from({ length: 5 }, (_, i) => ({
        ...call(`r${i}`, 30_000 + i * 1000, false),
        feature: 'Research',
        model: 'gpt-4o',
        usage: { output_tokens: 100_000 },
      })),
    ];
    const sent = await web.tally.call('POST', '/v1/events', { body: { events } });
    expect(sent.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    const f = await formatsOf(orgId);
    const { data } = await get(`/v1/orgs/${orgId}/usage/anomalies`);
    const errors = data.filter((a: { metric: string }) => a.metric === 'error_rate');
    expect(errors.map((a: { scope: string; label: string }) => [a.scope, a.label])).toEqual([
      ['feature', 'Search'],
      ['org', 'Flaky Search'],
    ]);
    const spends = data.filter((a: { metric: string }) => a.metric === 'spend');
    expect(spends.map((a: { label: string }) => a.label)).toContain('Research');

    const owner = await openAsOwner(orgId, '/');
    const items = owner
      .locator('section', { has: owner.getByRole('heading', { name: 'Unusual spikes', exact: true }) })
      .locator('li');
    await expect.poll(() => items.count()).toBe(data.length);
    const shown = await items.allTextContents();
    for (const a of errors) {
      const who = a.scope === 'org' ? 'the organization' : a.label;
      expect(shown).toContain(
        `${a.severity}${f.day(a.date)}: ${who} failed ${percent(a.value)} of calls ` +
          `(${f.count(a.failed_calls)} of ${f.count(a.calls)}; usually ${percent(a.median)})`,
      );
    }
    for (const a of spends) {
      const who = a.scope === 'org' ? 'the organization' : a.label;
      // Spend in credits says so: a bare number could be anything.
      expect(shown).toContain(
        `${a.severity}${f.day(a.date)}: ${who} spent ${f.credits(a.value)} credits (usually ${f.credits(a.median)} credits)`,
      );
    }
    expect(shown).toContain(
      `high${f.day(errors[0].date)}: Search failed 50% of calls (10 of 20; usually 0%)`,
    );
    await screenshot(owner, 'anomalies-error-rate');
    await owner.context().close();
  });

  describe('on the overview', () => {
    let f: Formats;
    beforeAll(async () => {
      f = await formatsOf(web.orgId);
      await page.getByRole('tab', { name: '30 days' }).click();
    });
    const usage = (path: string) => get(`/v1/orgs/${web.orgId}${path}`, ownerKey);
    /** What a row spends in credits, with its money beside it. */
    const spendAndMoney = (row: { credits: string; cost: string }) =>
      `${f.credits(row.credits)} credits · ${f.money(row.cost)}`;
    const note = (row: { share: string; calls: number; tokens: { total: number } }) =>
      `${f.share(row.share)} of total · ${f.count(row.calls)} calls · ${f.tokens(row.tokens.total)} tokens`;

    it('shows each feature with its money and its share of the total', async () => {
      const byFeature = await usage('/usage/breakdown?range=30d&by=feature&limit=20');
      expect(byFeature.unit).toBe('credits');
      expect(byFeature.data.length).toBeGreaterThan(1);
      const pills = panel('By feature').locator('.pill');
      await expect
        .poll(() => pills.locator('.pill-label').allTextContents())
        .toEqual(byFeature.data.map((row: { label: string }) => row.label));
      expect(await pills.locator('.pill-value').allTextContents()).toEqual(byFeature.data.map(spendAndMoney));
      expect(await pills.locator('.muted').allTextContents()).toEqual(byFeature.data.map(note));
    });

    it('shows each model with its money and its share of the total', async () => {
      const byModel = await usage('/usage/breakdown?range=30d&by=model&limit=10');
      expect(byModel.unit).toBe('credits');
      const bars = panel('By model').locator('.bars li');
      await expect.poll(() => bars.count()).toBe(byModel.data.length);
      expect(await bars.locator('.bar-label .num').allTextContents()).toEqual(
        byModel.data.map(spendAndMoney),
      );
      expect(await bars.locator('.bar-note').allTextContents()).toEqual(byModel.data.map(note));
      await screenshot(page, 'overview-shares');
    });

    it('shows the share of the spend each recommendation saves', async () => {
      const { currency, data } = await usage('/usage/recommendations?range=30d');
      const saving = data.filter((r: { savings_share: string | null }) => r.savings_share !== null);
      expect(saving.length).toBeGreaterThan(0);
      const items = panel('Recommendations').locator('li');
      await expect.poll(() => items.count()).toBe(data.length);
      expect(await items.allTextContents()).toEqual(
        data.map(
          (r: {
            title: string;
            detail: string;
            monthly_savings_cost: string | null;
            savings_share: string | null;
          }) =>
            `${r.title}${r.monthly_savings_cost ? ` saves about ${f.money(r.monthly_savings_cost, currency)} a month` : ''}` +
            `${r.monthly_savings_cost && r.savings_share ? ` (${percent(r.savings_share)} reduction)` : ''}${r.detail}`,
        ),
      );
    });
  });
});
