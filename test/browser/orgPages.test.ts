/**
 * Pages that follow the org's billing mode and settings, in a real browser. The Pricing page of an
 * org that pays its model provider itself lists the provider's prices in USD, as the API gives them
 * for that org, and says why; a credits org's lists its own sell prices in its currency. The
 * activity log leaves out the model of credit-billed calls when the org says so.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage, signIn, startWebTally, type WebTally } from './support.ts';

interface Price {
  operation: string;
  price: string;
  currency: string;
  source: string;
}

describe('pages by billing mode and org settings', () => {
  let web: WebTally;
  let browser: Browser;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.02, days: 3 }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  /** An org in EUR with an owner key, and one event so that its overview has figures. */
  async function orgWithOwnerKey(name: string, billing_mode: string, settings: Record<string, unknown> = {}) {
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name, currency: 'EUR', timezone: 'Europe/Berlin', billing_mode, ...settings },
    });
    const key = await web.tally.call('POST', `/v1/orgs/${org.body.id}/api_keys`, {
      body: { name: 'browser test', role: 'owner' },
    });
    const sent = await web.tally.call('POST', '/v1/events', {
      key: key.body.key,
      body: {
        events: [
          {
            id: 'first',
            member: 'owner-1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: new Date().toISOString(),
            usage: { input_tokens: 1000, output_tokens: 500 },
          },
        ],
      },
    });
    expect(sent.body.results?.[0]?.status, JSON.stringify(sent.body)).toBe('accepted');
    return { orgId: org.body.id as string, key: key.body.key as string };
  }

  /** Signed in on the app's own page, ready once its menu shows (a byok overview has no call counts). */
  async function signedIn(key: string) {
    const page = await openPage(browser);
    await signIn(page, web, key, (p) => p.getByRole('link', { name: 'Pricing', exact: true }).first());
    return page;
  }

  const money = (price: Price) =>
    new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: price.currency,
      maximumFractionDigits: 8,
    }).format(price.price as Intl.StringNumericLiteral);

  it.each([
    [
      'byom',
      'USD',
      "Own Model Co pays its model provider itself: these are the provider's list prices in USD, which its usage is counted at.",
    ],
    [
      'byok',
      'USD',
      "Own Model Co pays its model provider itself: these are the provider's list prices in USD.",
    ],
    ['credits', 'EUR', null],
  ])('lists a %s org its prices in %s', async (mode, currency, note) => {
    const { key } = await orgWithOwnerKey('Own Model Co', mode);
    const listed = await web.tally.call('GET', '/v1/prices?q=openai/gpt-4o/output&limit=5', { key });
    const output = (listed.body.data as (Price & { id: string })[]).find(
      (p) => p.id === 'openai/gpt-4o/output',
    )!;
    expect(output).toMatchObject({ currency, source: mode === 'credits' ? 'markup' : 'provider_cost' });

    const page = await signedIn(key);
    await page.getByRole('link', { name: 'Pricing', exact: true }).first().click();
    await page.getByLabel('Search by name').fill(output.operation);
    const row = page.locator('tbody tr', {
      has: page.getByRole('rowheader', { name: output.operation, exact: true }),
    });
    await expect.poll(() => row.first().locator('td.num').textContent()).toBe(money(output));
    const shown = page.locator('p.muted', { hasText: 'pays its model provider itself' });
    if (note === null) expect(await shown.count()).toBe(0);
    else expect(await shown.textContent()).toBe(note);
    await page.context().close();
  });

  it.each([
    ['credits', true, ['Date', 'User', 'Event type', 'Provider / model', 'Tokens', 'Credits', 'Cost']],
    ['credits', false, ['Date', 'User', 'Event type', 'Tokens', 'Credits', 'Cost']],
    // An org that pays its provider itself always sees what it paid for.
    ['byom', false, ['Date', 'User', 'Event type', 'Provider / model', 'Tokens', 'Credits', 'Cost']],
  ])('shows a %s org with activity_shows_model %s the activity columns %j', async (mode, shows, columns) => {
    const { key } = await orgWithOwnerKey('Activity Co', mode, { activity_shows_model: shows });
    const page = await signedIn(key);
    const activity = page.locator('table.activity');
    await expect.poll(() => activity.locator('thead th').allTextContents()).toEqual(columns);
    expect(await activity.locator('tbody tr').first().locator('td').count()).toBe(columns.length);
    await page.context().close();
  });
});
