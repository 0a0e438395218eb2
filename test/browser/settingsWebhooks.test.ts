/**
 * Webhook endpoint health in a real browser: each endpoint's state in Settings (active, failing,
 * disabled by an admin or after days of failures) with Enable and Disable; the alert of a disabled
 * endpoint and a budget's alert as sentences on the Alerts screen; budgets past one page with Load more.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAlerts } from '../../src/services/alerts/recordAlerts.ts';
import { createFormats } from '../../web/src/format.ts';
import { launchBrowser, ownerPage, screenshot, startWebTally, type WebTally } from './support.ts';

/** Budgets a page of the Limits screen's table holds. */
const BUDGETS_PAGE = 100;

describe('webhook endpoint health, alerts and budgets in the browser', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let ownerKey: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.02, days: 10 }), launchBrowser()]);
    ({ page, key: ownerKey } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const orgPath = (path: string) => `/v1/orgs/${web.orgId}${path}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await web.tally.call(method, orgPath(path), { key: ownerKey, body });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const addEndpoint = (url: string) => call('POST', '/webhook_endpoints', { url });
  const endpointOf = async (id: string) =>
    (await call('GET', '/webhook_endpoints?limit=100')).data.find((e: { id: string }) => e.id === id);
  const formats = async () => {
    const org = await call('GET', '');
    return createFormats(org.currency, org.timezone, 'en-US');
  };
  /** The list item of an endpoint in Settings. */
  const endpointItem = (url: string) => page.locator('.endpoints li', { hasText: url });

  it("shows each endpoint's state and enables one an admin disabled", async () => {
    const active = await addEndpoint('https://active.example.com/hooks');
    const manual = await addEndpoint('https://paused.example.com/hooks');
    const failing = await addEndpoint('https://flaky.example.com/hooks');
    const dead = await addEndpoint('https://dead.example.com/hooks');
    await call('PATCH', `/webhook_endpoints/${manual.id}`, { disabled: true });
    // What the delivery worker leaves: one endpoint failing for a day, one disabled after 6 days of it.
    await web.tally.db.query(
      `UPDATE webhook_endpoints SET failing_since = now() - interval '1 day' WHERE id = $1`,
      [failing.id],
    );
    await web.tally.db.query(
      `UPDATE webhook_endpoints SET disabled = true, disabled_at = now(), disabled_reason = 'failing',
         failing_since = now() - interval '6 days' WHERE id = $1`,
      [dead.id],
    );
    const [manualNow, failingNow, deadNow] = await Promise.all(
      [manual, failing, dead].map((e) => endpointOf(e.id)),
    );
    const f = await formats();

    await page.goto(`${web.url}/usage/settings`);
    const stateOf = (url: string) => endpointItem(url).locator('.endpoint-state');
    await expect.poll(() => stateOf(active.url).textContent()).toBe('Active');
    await expect
      .poll(() => stateOf(failing.url).textContent())
      .toBe(`Failing since ${f.date(failingNow.failing_since)}`);
    expect(await stateOf(failing.url).getAttribute('class')).toContain('tone-warn');
    expect(await stateOf(manual.url).textContent()).toBe(
      `Disabled ${f.date(manualNow.disabled_at)} (by an admin)`,
    );
    expect(await stateOf(dead.url).textContent()).toBe(
      `Disabled ${f.date(deadNow.disabled_at)} (after failing for days)`,
    );
    expect(await stateOf(dead.url).getAttribute('class')).toContain('tone-error');
    await screenshot(page, 'settings-webhook-health');

    await page.getByRole('button', { name: `Enable endpoint ${manual.url}` }).click();
    await expect
      .poll(() => page.getByRole('status').allTextContents())
      .toContain(
        `${manual.url} is enabled: the messages that waited for it are being delivered now, in order.`,
      );
    await expect.poll(async () => (await endpointOf(manual.id)).disabled).toBe(false);
    await expect.poll(() => stateOf(manual.url).textContent()).toBe('Active');

    await page.getByRole('button', { name: `Disable endpoint ${active.url}` }).click();
    await expect.poll(async () => (await endpointOf(active.id)).disabled_reason).toBe('manual');
    await expect.poll(() => stateOf(active.url).textContent()).toMatch(/^Disabled .* \(by an admin\)$/);
    await endpointItem(active.url)
      .getByRole('button', { name: `Enable endpoint ${active.url}` })
      .waitFor();
  });

  it('shows a refused change as the screen shows other errors', async () => {
    const gone = await addEndpoint('https://gone.example.com/hooks');
    await page.goto(`${web.url}/usage/settings`);
    await endpointItem(gone.url).waitFor();
    // Deleted behind the page's back: disabling it is answered 404.
    await call('DELETE', `/webhook_endpoints/${gone.id}`);
    await page.getByRole('button', { name: `Disable endpoint ${gone.url}` }).click();
    await expect.poll(() => page.locator('.note.error').textContent()).toContain('Tally answered 404.');
  });

  it("tells a disabled endpoint's alert as a sentence, and a budget's alert by the budget's name", async () => {
    const budget = await call('POST', '/budgets', {
      name: 'Research team',
      scope: { kind: 'workspace', id: 'research' },
      amount: '50',
    });
    const failingSince = new Date(Date.now() - 6 * 86_400_000);
    const url = 'https://down.example.com/hooks';
    const lastError = 'HTTP 503 Service Unavailable';
    await web.tally.db.transaction((tx) =>
      recordAlerts(tx, web.orgId, [
        {
          type: 'webhook_endpoint.disabled',
          scope: 'webhook_endpoint:we_down',
          periodStart: failingSince,
          thresholdPercent: 0,
          details: {
            endpoint_id: 'we_down',
            url,
            failing_since: failingSince.toISOString(),
            last_error: lastError,
          },
        },
        {
          type: 'alert.threshold_crossed',
          scope: `budget:${budget.id}`,
          periodStart: new Date(),
          thresholdPercent: 75,
          details: { scope_kind: 'budget', budget_id: budget.id, name: 'Research team' },
        },
      ]),
    );
    const f = await formats();

    await page.goto(`${web.url}/usage/alerts`);
    const endpointRow = page.locator('tbody tr', { hasText: 'Webhook endpoint disabled' });
    await expect
      .poll(() => endpointRow.locator('td').nth(2).textContent())
      .toBe(
        `Webhook endpoint ${url} was disabled after failing since ${f.date(failingSince.toISOString())}: ${lastError}`,
      );
    expect(await endpointRow.textContent()).not.toMatch(/(^|\D)0 ?%/);
    expect(await endpointRow.locator('td').last().textContent()).toBe('—');

    const budgetRow = page.locator('tbody tr', { hasText: 'Research team' });
    expect(await budgetRow.locator('td').allTextContents()).toEqual([
      expect.any(String),
      'Threshold reached',
      'Budget “Research team”',
      '75%',
    ]);
    expect(await page.locator('tbody').textContent()).not.toContain(`budget:${budget.id}`);
    await screenshot(page, 'alerts-sentences');
  });

  it('shows budgets past one page with Load more', async () => {
    const existing = (await call('GET', '/budgets?limit=1000')).data.length;
    for (let n = existing; n <= BUDGETS_PAGE; n += 1) {
      await call('POST', '/budgets', {
        name: `Project ${String(n).padStart(3, '0')}`,
        scope: { kind: 'project', id: `project-${n}` },
        amount: '10',
      });
    }
    const total = (await call('GET', '/budgets?limit=1000')).data.length;
    expect(total).toBe(BUDGETS_PAGE + 1);
    await page.goto(`${web.url}/usage/limits`);
    const budgetRows = page.getByRole('region', { name: 'Budgets' }).locator('tbody tr');
    await expect.poll(() => budgetRows.count()).toBe(BUDGETS_PAGE);
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => budgetRows.count()).toBe(total);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    expect(new Set(await budgetRows.locator('th').allTextContents()).size).toBe(total);
  });
});
