/**
 * Embedding and money in a real browser: embed tokens in an iframe on another origin (and an expired one
 * refused), what a viewer is not offered, a top-up through the local payment provider, and the
 * <tally-usage-bar> element following ingested usage live.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dateIn } from '../../src/domain/calendar.ts';
import {
  embedLink,
  launchBrowser,
  openPage,
  screenshot,
  startHostPage,
  startWebTally,
  type WebTally,
} from './support.ts';

const credits = (value: string) =>
  new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(value as never);

describe('embedding, roles, top-ups and the usage bar', () => {
  let web: WebTally;
  let browser: Browser;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.1, days: 40 }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const newPage = () => openPage(browser);

  /** A host app's page whose header frames the usage bar of a new member of the org. */
  const usageBarHost = async (orgId: string, member: string, style = '') => {
    await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: member, name: member, role: 'member' },
    });
    const { token } = await embedLink(web, 'member', { member, orgId });
    return startHostPage(`<!doctype html><title>Editor</title>${style}
      <header><tally-usage-bar token="${token}" upgrade-url="#upgrade"></tally-usage-bar></header>
      <script type="module" src="${web.url}/usage-bar.js"></script>`);
  };

  const balance = (orgId = web.orgId) =>
    web.tally.call('GET', `/v1/orgs/${orgId}/balance`).then((r) => r.body);

  it('opens the page in an iframe on the host app with an embed token; an expired one is refused', async () => {
    const live = await embedLink(web, 'admin');
    const expired = await embedLink(web, 'admin', { ttl_seconds: 1 });
    const host = await startHostPage(`<!doctype html><title>Host app</title>
      <iframe id="live" title="Usage" src="${live.url}&locale=de-DE" width="1200" height="800"></iframe>
      <iframe id="expired" title="Expired usage" src="about:blank" width="600" height="300"></iframe>`);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const page = await newPage();
      await page.goto(host.url);
      const frame = page.frameLocator('#live');
      const summary = await web.tally.call('GET', `/v1/orgs/${web.orgId}/usage/summary?range=30d`);
      // The host app chose German for its user: numbers follow it, in the org's currency.
      const german = new Intl.NumberFormat('de-DE').format(summary.body.calls);
      await expect.poll(() => frame.getByTestId('kpi-calls').textContent()).toBe(german);
      expect(await frame.getByTestId('kpi-money').textContent()).toMatch(/^[\d.]+,\d{2}\s€$/);
      // The embedded page offers no sign-out: the host app owns the session.
      expect(await frame.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
      await page.locator('#expired').evaluate((el: { src: string }, url) => {
        el.src = url;
      }, expired.url);
      await page.frameLocator('#expired').getByText('This usage link can no longer be used').waitFor();
      await page.frameLocator('#expired').getByText('The embed token has expired').waitFor();
      await screenshot(page, 'embedded-iframe');
      await page.context().close();
    } finally {
      await host.close();
    }
  });

  it('says the usage link expired when its token does, with the page open', async () => {
    const page = await newPage();
    // Long enough for the overview to render first on a busy machine (two suites share two cores).
    await page.goto((await embedLink(web, 'viewer', { member: 'u_1010', ttl_seconds: 12 })).url);
    await page.getByTestId('kpi-calls').waitFor({ timeout: 12_000 });
    await page.getByText('This usage link can no longer be used').waitFor({ timeout: 20_000 });
    await page.getByText('The embed token has expired').waitFor();
    expect(await page.getByTestId('kpi-calls').count()).toBe(0);
    await page.context().close();
  });

  it('offers a viewer no top-up, no limits and no payments', async () => {
    const page = await newPage();
    await page.goto((await embedLink(web, 'viewer', { member: 'u_1010' })).url);
    await page.getByTestId('kpi-calls').waitFor();
    await page.getByText('Days remaining').waitFor();
    expect(await page.getByRole('button', { name: 'Top up credits' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Configure limits' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Payments' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Limits' }).click();
    await page.getByText('Alert threshold').first().waitFor();
    expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
    await screenshot(page, 'viewer-limits');
    await page.context().close();
  });

  it('offers an embedded owner members and webhooks, but no API keys: the token withholds keys:write', async () => {
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'u_1002' })).url);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Members and roles' }).waitFor();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    expect(await page.getByRole('heading', { name: 'API keys' }).count()).toBe(0);
    await page.context().close();
  });

  it('tops up through the local payment provider and the balance rises', async () => {
    const before = await balance();
    const page = await newPage();
    await page.goto((await embedLink(web, 'billing', { member: 'u_1007' })).url);
    await page.getByRole('button', { name: 'Top up credits' }).click();
    const dialog = page.getByRole('dialog', { name: 'Top up credits' });
    await dialog.getByText('Enter a custom amount').click();
    await dialog.getByLabel('Custom amount (EUR)').fill('0.5');
    await dialog.getByText('The smallest top-up is 1.').waitFor();
    await dialog.getByLabel('Custom amount (EUR)').fill('12.345');
    await dialog.getByText('at most two decimals').waitFor();
    await screenshot(page, 'topup-dialog');
    await dialog.getByLabel('€50.00').check();
    await dialog.getByLabel('Save the card for automatic top-ups').check();
    await dialog.getByRole('button', { name: 'Pay' }).click();
    await page.waitForURL(/\/local-checkout\//);
    await page.getByRole('button', { name: /Pay/ }).click();
    await page.waitForURL(/\/usage\/payments\?payment=pay_.*checkout=success/);
    await page.getByText('5,000 credits were added to your balance').waitFor();
    const paid = page.locator('tbody tr').first();
    await expect.poll(() => paid.locator('.status').textContent()).toBe('Paid');
    await screenshot(page, 'payments-after-topup');
    const [invoice] = await Promise.all([
      page.waitForEvent('download'),
      page
        .getByRole('button', { name: /\(PDF\)/ })
        .first()
        .click(),
    ]);
    expect(invoice.suggestedFilename()).toMatch(/\.pdf$/);
    // The banner's Dismiss sits with the banner, and takes both away.
    const returned = page.locator('.checkout-return');
    expect(await returned.getByRole('button', { name: 'Dismiss' }).count()).toBe(1);
    await returned.getByRole('button', { name: 'Dismiss' }).click();
    await expect.poll(() => page.getByText('credits were added to your balance').count()).toBe(0);
    expect(new URL(page.url()).search).toBe('');

    // Automatic top-up: the target must be above the threshold, checked as you type.
    const auto = page.locator('section', { has: page.getByRole('heading', { name: 'Automatic top-up' }) });
    await auto.getByLabel('Top up automatically when credits run low').check();
    await auto.getByLabel('When available credits fall below').fill('1000');
    await auto.getByLabel('Buy enough to reach (credits)').fill('500');
    await auto.getByText('The target must be above the threshold.').waitFor();
    expect(await auto.getByRole('button', { name: 'Save automatic top-up' }).isDisabled()).toBe(true);
    await auto.getByLabel('Buy enough to reach (credits)').fill('3000');
    await auto.getByLabel('At most per month (EUR)').fill('200');
    await auto.getByRole('button', { name: 'Save automatic top-up' }).click();
    await auto.getByText('Saved').waitFor();
    const settings = await web.tally.call('GET', `/v1/orgs/${web.orgId}/auto_topup`);
    expect(settings.body).toMatchObject({
      enabled: true,
      threshold_credits: '1000',
      target_credits: '3000',
      monthly_cap: '200',
    });
    await screenshot(page, 'payments-auto-topup');
    const after = await balance();
    expect(Number(after.available_credits) - Number(before.available_credits)).toBeCloseTo(5000, 6);
    await page.context().close();
  });

  it('opens checkout in a new tab when embedded (payment pages refuse frames); the frame shows the credits', async () => {
    const before = await balance();
    const link = await embedLink(web, 'billing', { member: 'u_1007' });
    const host = await startHostPage(`<!doctype html><title>Host app</title>
      <iframe id="usage" title="Usage" src="${link.url}&next=%2Fusage%2Fpayments" width="1200" height="800"></iframe>`);
    try {
      const page = await newPage();
      await page.goto(host.url);
      const frame = page.frameLocator('#usage');
      const available = frame.getByTestId('payments-available');
      await expect
        .poll(() => available.textContent(), { timeout: 8000 })
        .toBe(credits(before.available_credits));
      await frame.getByRole('button', { name: 'Top up credits' }).click();
      const dialog = frame.getByRole('dialog', { name: 'Top up credits' });
      await dialog.getByLabel('€10.00').check();
      const [checkout] = await Promise.all([
        page.waitForEvent('popup'),
        dialog.getByRole('button', { name: 'Pay' }).click(),
      ]);
      await checkout.waitForURL(/\/local-checkout\//);
      // The host page is still there, its frame waiting for the payment made in the other tab.
      expect(page.url()).toBe(host.url);
      await frame
        .getByText('Complete the payment in the checkout tab. Your credits will appear shortly')
        .waitFor();
      expect(await checkout.evaluate(() => (globalThis as unknown as { opener: unknown }).opener)).toBeNull();
      await checkout.getByRole('button', { name: /Pay/ }).click();
      await checkout.waitForURL(/\/usage\/payments\?payment=pay_.*checkout=success/);
      // That tab holds no credential (the host app keeps the session): it thanks and sends the buyer back.
      await checkout.getByRole('heading', { name: 'Thank you for your payment' }).waitFor();
      await checkout.getByText('Your credits will appear shortly on your usage page').waitFor();
      await screenshot(checkout, 'checkout-returned-tab');
      await frame.getByText('1,000 credits were added to your balance').waitFor();
      const after = await balance();
      expect(Number(after.available_credits) - Number(before.available_credits)).toBeCloseTo(1000, 6);
      await expect
        .poll(() => available.textContent(), { timeout: 8000 })
        .toBe(credits(after.available_credits));
      await expect.poll(() => frame.locator('tbody tr .status').first().textContent()).toBe('Paid');
      await screenshot(page, 'embedded-topup-done');
      await page.context().close();
    } finally {
      await host.close();
    }
  });

  it('offers checkout as a link when the host page lets no tab open from its frame', async () => {
    const link = await embedLink(web, 'billing', { member: 'u_1007' });
    // No allow-popups: the frame's window.open gets nothing.
    const host = await startHostPage(`<!doctype html><title>Host app</title>
      <iframe id="usage" title="Usage" sandbox="allow-scripts allow-same-origin allow-forms"
        src="${link.url}&next=%2Fusage%2Fpayments" width="1200" height="800"></iframe>`);
    try {
      const page = await newPage();
      await page.goto(host.url);
      const frame = page.frameLocator('#usage');
      await frame.getByRole('button', { name: 'Top up credits' }).click();
      const dialog = frame.getByRole('dialog', { name: 'Top up credits' });
      await dialog.getByLabel('€10.00').check();
      await dialog.getByRole('button', { name: 'Pay' }).click();
      await dialog.getByText('The browser did not open the checkout tab.').waitFor();
      const open = dialog.getByRole('link', { name: 'Open checkout in a new tab' });
      expect(await open.getAttribute('href')).toMatch(/\/local-checkout\/lcs_/);
      expect(await open.getAttribute('target')).toBe('_blank');
      expect(page.context().pages()).toHaveLength(1);
      await page.context().close();
    } finally {
      await host.close();
    }
  });

  it('shows the special states: an empty new org, BYOK without tracking, BYOM in USD', async () => {
    const states = [
      ['credits', 'empty-org', 'No usage yet in this period'],
      ['byok', 'byok', 'Usage tracking is not available'],
      ['byom', 'byom', 'Spend this cycle (USD)'],
    ] as const;
    for (const [mode, name, text] of states) {
      const org = await web.tally.call('POST', '/v1/orgs', {
        body: { name: `New ${mode}`, currency: 'EUR', timezone: 'Europe/Paris', billing_mode: mode },
      });
      await web.tally.call('POST', `/v1/orgs/${org.body.id}/members`, {
        body: { external_id: 'first', name: 'First User', role: 'owner' },
      });
      const page = await newPage();
      await page.goto((await embedLink(web, 'owner', { member: 'first', orgId: org.body.id })).url);
      await page.getByText(text).first().waitFor();
      if (mode === 'credits') await page.getByText('No activity in this period.').waitFor();
      if (mode === 'byom') await expect.poll(() => page.getByTestId('kpi-spent').textContent()).toBe('$0.00');
      if (mode === 'byok') {
        expect(await page.getByRole('link', { name: 'OpenAI usage' }).count()).toBe(1);
        // No period, filter or export over figures it does not have, and no pages of spend or limits.
        expect(await page.getByRole('tab', { name: '30 days' }).count()).toBe(0);
        expect(await page.getByRole('button', { name: 'Refresh' }).count()).toBe(0);
        for (const link of ['Monthly history', 'Limits'])
          expect(await page.getByRole('link', { name: link, exact: true }).count(), link).toBe(0);
        for (const path of ['/usage/monthly', '/usage/limits']) {
          const url = new URL(page.url());
          url.pathname = path;
          await page.goto(url.toString());
          await page.getByText('Usage tracking is not available').first().waitFor();
          expect(await page.getByRole('button', { name: 'Save', exact: true }).count(), path).toBe(0);
        }
      }
      await screenshot(page, name);
      await page.context().close();
    }
  });

  it('opens the quota page that a blocked hold links to', async () => {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Capped', currency: 'EUR', timezone: 'Europe/Berlin', billing_mode: 'credits' },
    });
    const orgId = org.body.id;
    await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: 'cap-1', name: 'Cap Owner', role: 'owner' },
    });
    await web.tally.call('PUT', `/v1/orgs/${orgId}/limits`, {
      body: { alert_threshold: '0.01', allowed_limit: '0.02' },
    });
    const spent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [
          {
            id: 'cap-event',
            org_id: orgId,
            member: 'cap-1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: new Date().toISOString(),
            usage: { input_tokens: 100_000, output_tokens: 10_000 },
          },
        ],
      },
    });
    expect(spent.body.results[0].status).toBe('accepted');
    const hold = await web.tally.call('POST', '/v1/authorizations', {
      body: {
        org_id: orgId,
        member: 'cap-1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        estimate: { credits: '1' },
      },
    });
    expect(hold.body).toMatchObject({ approved: false, reason: 'quota_exceeded' });
    const quota = new URL(hold.body.quota_url);
    const link = await embedLink(web, 'owner', { member: 'cap-1', orgId });
    const page = await newPage();
    await page.goto(`${link.url}&next=${encodeURIComponent(quota.pathname + quota.search)}`);
    await page.getByRole('heading', { name: 'Quota exceeded' }).waitFor();
    await page.getByText('reached its allowed limit of €0.02').waitFor();
    await page.getByRole('link', { name: 'Raise the limit' }).waitFor();
    await screenshot(page, 'quota-exceeded');
    await page.context().close();
  });

  it('pushes new usage to the open overview: figures change without Refresh, paged lists stay put', async () => {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Live Team', currency: 'EUR', timezone: 'Europe/Berlin', billing_mode: 'credits' },
    });
    const orgId = org.body.id;
    await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
      body: { external_id: 'live-1', name: 'Live One', role: 'owner' },
    });
    const ingest = async (ids: string[]) => {
      const res = await web.tally.call('POST', '/v1/events', {
        body: {
          events: ids.map((id, i) => ({
            id,
            org_id: orgId,
            member: 'live-1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o-mini',
            occurred_at: new Date(Date.now() - (ids.length - i) * 1000).toISOString(),
            usage: { input_tokens: 1000, output_tokens: 100 },
          })),
        },
      });
      expect(res.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    };
    await ingest(Array.from({ length: 60 }, (_, i) => `live-${i}`));
    const page = await newPage();
    await page.goto((await embedLink(web, 'owner', { member: 'live-1', orgId })).url);
    const calls = page.getByTestId('kpi-calls');
    const activity = page.locator('section', { has: page.getByRole('heading', { name: 'Recent activity' }) });
    const activityRows = activity.locator('tbody tr');
    await expect.poll(() => calls.textContent(), { timeout: 8000 }).toBe('60');
    await expect.poll(() => activityRows.count(), { timeout: 8000 }).toBe(50);
    // Let the page's stream start watching (3 s after the overview opens), then send usage from the host backend.
    await page.waitForTimeout(4500);
    await ingest(['live-new-1']);
    // Pushed within seconds; polling every 30 s would not have shown it yet.
    await expect.poll(() => calls.textContent(), { timeout: 7000 }).toBe('61');
    await expect.poll(() => activityRows.count(), { timeout: 8000 }).toBe(50);

    // The reader pages through the activity: a pushed change leaves the list as it is, and says so.
    await activity.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => activityRows.count(), { timeout: 8000 }).toBe(61);
    await ingest(['live-new-2']);
    await expect.poll(() => calls.textContent(), { timeout: 10_000 }).toBe('62');
    await activity.getByText('New activity since this list was loaded.').waitFor();
    expect(await activityRows.count()).toBe(61);
    await screenshot(page, 'overview-live-behind');
    await activity.getByRole('button', { name: 'Show the latest' }).click();
    await expect.poll(() => activityRows.count(), { timeout: 8000 }).toBe(50);
    expect(await activity.getByText('New activity since this list was loaded.').count()).toBe(0);
    await page.context().close();
  });

  it('offers the upgrade in the usage bar of a free-tier org before any use, and not once the operator moves it to a paid plan', async () => {
    // Created without a plan allowance of its own: the free tier's 500 credits a month.
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Free Team', currency: 'USD', timezone: 'UTC' },
    });
    expect(org.body.free_tier).toBe(true);
    const orgId = org.body.id;
    const host = await usageBarHost(orgId, 'free-dev');
    try {
      const page = await newPage();
      await page.goto(host.url);
      const bar = page.frameLocator('tally-usage-bar iframe');
      await expect.poll(() => bar.getByTestId('bar-available').textContent()).toBe('500');
      expect(await bar.getByRole('button').allTextContents()).toEqual(['Upgrade']);
      await bar.getByRole('button', { name: 'Upgrade' }).click();
      await page.waitForURL(/#upgrade$/);

      const paid = await web.tally.call('PATCH', `/v1/orgs/${orgId}`, { body: { free_tier: false } });
      expect(paid.body.free_tier).toBe(false);
      await page.goto(host.url.replace(/#.*$/, ''));
      await page.reload();
      await expect.poll(() => bar.getByTestId('bar-available').textContent()).toBe('500');
      expect(await bar.getByRole('button').count()).toBe(0);
      await page.context().close();
    } finally {
      await host.close();
    }
  });

  it('updates <tally-usage-bar> live as usage is ingested, with referral from 50 % and upgrade from 75 %', async () => {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: {
        name: 'Small Team',
        currency: 'EUR',
        timezone: 'Europe/Berlin',
        billing_mode: 'credits',
        plan_allowance_credits: '400',
        // The cycle starts today, so 80 % used today runs out before it ends on any day of the
        // month (late in a calendar month the daily average would last past the month's end).
        billing_cycle_anchor: dateIn('Europe/Berlin', new Date()),
      },
    });
    const orgId = org.body.id;
    const host = await usageBarHost(
      orgId,
      'dev-1',
      '<style>tally-usage-bar { --tally-accent: #0a7d43; }</style>',
    );
    try {
      const page = await newPage();
      await page.goto(host.url);
      const bar = page.frameLocator('tally-usage-bar iframe');
      const available = bar.getByTestId('bar-available');
      await expect.poll(() => available.textContent()).toBe('400');
      let n = 0;
      let used = 0;
      const seen = new Set<string>();
      while (used < 0.8) {
        n += 1;
        const ingest = await web.tally.call('POST', '/v1/events', {
          body: {
            events: [
              {
                id: `bar-${n}`,
                org_id: orgId,
                member: 'dev-1',
                feature: 'Agents',
                provider: 'openai',
                model: 'gpt-4o',
                occurred_at: new Date().toISOString(),
                usage: { input_tokens: 200_000, output_tokens: 20_000 },
              },
            ],
          },
        });
        expect(ingest.body.results[0].status).toBe('accepted');
        const now = await balance(orgId);
        used = 1 - Number(now.available_credits) / 400;
        await expect
          .poll(() => available.textContent(), { timeout: 10_000 })
          .toBe(credits(now.available_credits));
        const buttons = (await bar.getByRole('button').allTextContents()).join(',');
        expect(buttons.includes('Invite a friend')).toBe(used >= 0.5);
        expect(buttons.includes('Upgrade')).toBe(used >= 0.75);
        seen.add(buttons);
      }
      expect(seen.size).toBeGreaterThan(1);
      await screenshot(page, 'usage-bar');
      await bar.getByRole('button', { name: 'Upgrade' }).click();
      await page.waitForURL(/#upgrade$/);

      // On track to run out before the cycle ends: the overview warns, with the way to buy more.
      expect((await balance(orgId)).cycle.runs_out_before_cycle_end).toBe(true);
      const owner = await web.tally.call('POST', `/v1/orgs/${orgId}/members`, {
        body: { external_id: 'owner-1', name: 'Owner One', role: 'owner' },
      });
      expect(owner.status).toBe(201);
      await page.goto((await embedLink(web, 'owner', { member: 'owner-1', orgId })).url);
      await page.getByText('At the current rate your credits run out').waitFor();
      await page.getByRole('link', { name: 'Upgrade or top up' }).click();
      await page.getByRole('heading', { name: 'Payments' }).waitFor();
      await page.context().close();
    } finally {
      await host.close();
    }
  });
});
