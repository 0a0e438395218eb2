/**
 * The usage page in a real browser on the demo data: every screen renders (a screenshot of each is saved
 * under test-artifacts/screens), figures match the API, paging and expanding work, limits validate inline.
 */
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_KEY } from '../support/harness.ts';
import {
  demoCallNow,
  formatCount,
  launchBrowser,
  screenshot,
  startWebTally,
  tablesPastEdge,
  type WebTally,
} from './support.ts';

describe('usage page screens', () => {
  let web: WebTally;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ownerKey: string;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.15, days: 75 }), launchBrowser()]);
    const key = await web.tally.call('POST', `/v1/orgs/${web.orgId}/api_keys`, {
      body: { name: 'browser test', role: 'owner' },
    });
    ownerKey = key.body.key;
    await demoCallNow(web);
    context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  const api = (path: string) => web.tally.call('GET', `/v1/orgs/${web.orgId}${path}`).then((r) => r.body);
  const kpiCalls = () => page.getByTestId('kpi-calls');

  it('signs in with an API key and opens the overview with the API figures', async () => {
    await page.goto(`${web.url}/`);
    await page.getByLabel('API key').fill('tally_sk_not_a_real_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not valid');
    // The figures at the top are asked for before anything below them.
    const usageAsked: string[] = [];
    const noteUsage = (request: { url(): string }) => {
      const path = new URL(request.url()).pathname;
      if (path.includes('/usage/')) usageAsked.push(path.replace(/^.*\/usage\//, ''));
    };
    page.on('request', noteUsage);
    await page.getByLabel('API key').fill(ownerKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const summary = await api('/usage/summary?range=30d');
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(summary.calls));
    await expect
      .poll(() => page.getByTestId('kpi-members').textContent())
      .toBe(String(summary.active_members));
    await page.getByRole('heading', { name: 'Recent activity' }).waitFor();
    await page.locator('.chart svg polyline').first().waitFor();
    await page.getByText('Days remaining').waitFor();
    // Signed in at the root: the page has its heading, and the menu marks the overview as current.
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Usage & Billing');
    const current = page.locator('nav[aria-label="Usage pages"] [aria-current="page"]');
    expect(await current.allTextContents()).toEqual(['Overview']);
    const patterns = await api('/usage/patterns?range=30d');
    await page.getByText(`Busiest hour: ${String(patterns.busiest_hour).padStart(2, '0')}:00`).waitFor();
    const recommendations = await api('/usage/recommendations?range=30d');
    await expect.poll(() => page.locator('.recommendations li').count()).toBe(recommendations.data.length);
    await screenshot(page, 'overview');
    page.off('request', noteUsage);
    expect(usageAsked[0]).toBe('summary');
    expect(usageAsked.length).toBeGreaterThan(10);
  });

  it('switches periods and shows what the API says for each', async () => {
    for (const [tab, range] of [
      ['7 days', '7d'],
      ['This month', 'mtd'],
      ['Last month', 'last_month'],
      ['24 hours', '1d'],
    ] as const) {
      await page.getByRole('tab', { name: tab }).click();
      const summary = await api(`/usage/summary?range=${range}`);
      await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(summary.calls));
      const credits = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(summary.credits);
      await expect.poll(() => page.getByTestId('kpi-spent').textContent()).toBe(`${credits} credits`);
    }
  });

  it('shows a custom range picked with the date inputs', async () => {
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    await page.getByRole('tab', { name: 'Custom' }).click();
    await page.getByLabel('From').fill(day(3));
    await page.getByLabel('To').fill(day(10));
    await page.getByText('The start must not be after the end.').waitFor();
    // Said once: not also asked to pick the dates it has.
    expect(await page.getByText('Pick a start and an end date.').count()).toBe(0);
    await page.getByLabel('To').fill(day(3));
    await page.getByLabel('From').fill(day(10));
    const summary = await api(`/usage/summary?range=custom&from=${day(10)}&to=${day(3)}`);
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(summary.calls));
    // The dates are in the address: a reload shows the same range.
    await page.reload();
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe(day(10));
    expect(await page.getByLabel('To', { exact: true }).inputValue()).toBe(day(3));
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(summary.calls));
  });

  it('moves between periods with the keyboard', async () => {
    await page.getByRole('tab', { name: '24 hours' }).focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('tab', { selected: true }).textContent()).toBe('7 days');
    const { calls } = await api('/usage/summary?range=7d');
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(calls));
    expect(await page.evaluate(() => (globalThis as any).document.activeElement.textContent)).toBe('7 days');
  });

  it('filters by member', async () => {
    await page.getByRole('tab', { name: '30 days' }).click();
    const members = await web.tally.call('GET', `/v1/orgs/${web.orgId}/members?limit=100`);
    const lukas = members.body.data.find((m: any) => m.name === 'Lukas Schneider');
    await page.getByLabel('User', { exact: true }).selectOption(lukas.id);
    const summary = await api(`/usage/summary?range=30d&member=${lukas.id}`);
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(summary.calls));
    await page.getByLabel('User', { exact: true }).selectOption('');
  });

  it('loads more activity until the end of the period, every event once', async () => {
    await page.getByRole('tab', { name: '7 days' }).click();
    const { calls } = await api('/usage/summary?range=7d');
    expect(calls).toBeGreaterThan(50);
    await expect.poll(() => kpiCalls().textContent()).toBe(formatCount(calls));
    const rows = page.locator('table.activity tbody tr');
    await expect.poll(() => rows.count()).toBe(50);
    const loadMore = page.getByRole('button', { name: 'Load more' });
    while (await loadMore.isVisible()) {
      const before = await rows.count();
      await loadMore.click();
      await expect.poll(() => rows.count()).toBeGreaterThan(before);
    }
    await page.getByText('End of activity for this period').waitFor();
    expect(await rows.count()).toBe(calls);
  });

  it('shows the top 5 members, then all of them, then the top 5 again', async () => {
    await page.getByRole('tab', { name: '30 days' }).click();
    const byMember = await api('/usage/breakdown?range=30d&by=member&limit=5');
    expect(byMember.groups).toBeGreaterThan(5);
    const list = page.locator('.member-list li');
    await expect.poll(() => list.count()).toBe(5);
    await page.getByRole('button', { name: `Show all (${byMember.groups})` }).click();
    await expect.poll(() => list.count()).toBe(byMember.groups);
    // The removed demo member's usage stays, under "Unknown user".
    const all = await api('/usage/breakdown?range=30d&by=member&limit=500');
    expect(all.data.map((row: any) => row.label)).toContain('Unknown user');
    await list.filter({ hasText: 'Unknown user' }).first().waitFor();
    await page.getByRole('button', { name: 'Show top 5' }).click();
    await expect.poll(() => list.count()).toBe(5);
  });

  it('expands the top workspaces table with Show more', async () => {
    const panel = page.locator('section', { has: page.getByRole('heading', { name: 'Top workspaces' }) });
    const rows = panel.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(5);
    await panel.getByRole('button', { name: 'Show more' }).click();
    const all = await api('/usage/breakdown?range=30d&by=workspace&limit=10');
    await expect.poll(() => rows.count()).toBe(Math.min(10, all.groups));
  });

  it('exports the period as CSV, JSON and PDF downloads', async () => {
    for (const format of ['CSV', 'JSON', 'PDF']) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: `Export ${format}` }).click(),
      ]);
      expect(download.suggestedFilename().toLowerCase()).toMatch(
        new RegExp(`\\.(${format.toLowerCase()}|jsonl)$`),
      );
      expect(await download.failure()).toBeNull();
    }
  });

  it('opens a day from the daily breakdown with its itemized entries', async () => {
    const firstDay = page.locator('section', {
      has: page.getByRole('heading', { name: 'Daily breakdown this month' }),
    });
    await firstDay.locator('tbody a').first().click();
    await page.getByRole('heading', { name: /Daily detail/ }).waitFor();
    const date = new URL(page.url()).pathname.split('/').pop();
    const day = await api(`/usage/days/${date}`);
    const rows = page.locator('table tbody tr');
    await expect.poll(() => rows.count()).toBe(day.data.length);
    // Category, operation, unit price per billing unit, quantity, calls, cost: as the API itemizes them.
    const first = await rows.first().locator('td, th').allTextContents();
    expect(first[0]).toBe(day.data[0].category);
    expect(first[1]).toBe(day.data[0].operation);
    expect(first[2]).toContain(`per ${day.data[0].billing_unit}`);
    await screenshot(page, 'daily-detail');
  });

  it('opens a conversation from the activity log', async () => {
    await page.goto(`${web.url}/usage`);
    await page.locator('table.activity a').first().click();
    await page.getByRole('heading', { name: 'Conversation' }).waitFor();
    await page.getByText('Messages', { exact: true }).waitFor();
    // Models are named as the activity log names them: the provider's display name, then the model.
    const models = page.locator('table.table > tbody > tr').first().locator('td').nth(1).locator('.muted');
    expect(await models.textContent()).toMatch(/^(OpenAI|Anthropic|Google) · [^/]+$/);
    await screenshot(page, 'conversation');
  });

  it('blocks a threshold above the limit inline, then saves valid limits', async () => {
    await page.goto(`${web.url}/usage/limits`);
    await page.getByLabel('Alert threshold (EUR)').fill('200');
    await page.getByLabel('Allowed limit (EUR)').fill('100');
    await page.getByText('The alert threshold must not exceed the allowed limit.').waitFor();
    expect(await page.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
    await screenshot(page, 'limits-invalid');
    await page.getByLabel('Alert threshold (EUR)').fill('80');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved').waitFor();
    const limits = await api('/limits');
    expect([limits.alert_threshold, limits.allowed_limit]).toEqual(['80', '100']);

    await page.getByLabel('Name', { exact: true }).fill('Platform cap');
    await page.getByLabel('Covers').selectOption('workspace');
    await page.getByLabel('Which (id or name)').fill('platform');
    await page.getByLabel('Amount (EUR)').fill('25');
    await page.getByLabel('Period').selectOption('cycle');
    await page.getByRole('button', { name: 'Add budget' }).click();
    await page.getByRole('row', { name: /Platform cap/ }).waitFor();
    expect(await page.getByRole('row', { name: /Platform cap/ }).textContent()).toContain(
      'per billing cycle',
    );
    const budgets = await api('/budgets');
    expect(budgets.data).toMatchObject([
      { name: 'Platform cap', amount: '25', period: 'cycle', scope: { kind: 'workspace' } },
    ]);
    await screenshot(page, 'limits');
    await page.getByRole('button', { name: 'Remove budget Platform cap' }).click();
    await page.getByText('No budgets.').waitFor();
    expect((await api('/budgets')).data).toEqual([]);
  });

  it('renders every other screen', async () => {
    const screens: [string, string, string][] = [
      ['/usage/monthly', /Monthly history/.source, 'monthly'],
      ['/usage/payments', 'Payments', 'payments'],
      ['/usage/pricing', 'Pricing', 'pricing'],
      ['/usage/alerts', 'Alerts', 'alerts'],
      ['/usage/settings', 'Members and roles', 'settings-members'],
      ['/usage/quota', 'Quota exceeded', 'quota'],
    ];
    for (const [path, heading, name] of screens) {
      await page.goto(`${web.url}${path}`);
      await page.getByRole('heading', { name: new RegExp(heading) }).waitFor();
      await page.locator('.loading').first().waitFor({ state: 'detached' });
      await screenshot(page, name);
    }
    await page.goto(`${web.url}/usage/pricing`);
    await page.getByLabel('Search by name').fill('claude');
    await expect
      .poll(async () => (await page.locator('tbody th').allTextContents()).every((t) => /claude/i.test(t)))
      .toBe(true);
    const alerts = await api('/alerts');
    await page.goto(`${web.url}/usage/alerts`);
    if (alerts.data.length === 0) await page.getByText('No alerts yet').waitFor();
    else await expect.poll(() => page.locator('tbody tr').count()).toBe(alerts.data.length);
  });

  it('manages members, API keys and webhooks in settings', async () => {
    await page.goto(`${web.url}/usage/settings`);
    const members = await web.tally.call('GET', `/v1/orgs/${web.orgId}/members?limit=100`);
    const noah = members.body.data.find((m: any) => m.name === 'Noah Fischer');
    const roleOf = async (id: string) =>
      (await web.tally.call('GET', `/v1/orgs/${web.orgId}/members?limit=100`)).body.data.find(
        (m: any) => m.id === id,
      ).role;
    // A key press on the focused role changes nothing until it is saved; Cancel puts it back.
    const role = page.getByLabel('Role of Noah Fischer');
    await role.focus();
    await page.keyboard.press('ArrowDown');
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await roleOf(noah.id)).toBe(noah.role);
    expect(await role.inputValue()).toBe(noah.role);
    await role.selectOption('viewer');
    expect(await roleOf(noah.id)).toBe(noah.role);
    await page.getByRole('button', { name: 'Save role' }).click();
    await expect.poll(() => roleOf(noah.id)).toBe('viewer');
    // The page shows the saved role once it has read the members again, after the API has it.
    await expect.poll(() => page.getByRole('button', { name: 'Save role' }).count()).toBe(0);

    await page.getByLabel('Key name').fill('reporting');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.locator('.note.ok code').textContent();
    expect(secret).toMatch(/^tally_sk_/);
    expect((await web.tally.call('GET', '/v1/session', { key: secret! })).body.org_id).toBe(web.orgId);

    await page.getByLabel('Endpoint URL').fill('https://hooks.example.com/tally');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await page.getByText('https://hooks.example.com/tally').waitFor();
    await page.getByRole('button', { name: 'Deliveries' }).click();
    await page.getByText('Nothing sent yet.').waitFor();
    await screenshot(page, 'settings');
  });

  it('fits a phone screen', async () => {
    // Same tab: the sign-in lives in this tab's sessionStorage.
    const phone = page;
    await phone.setViewportSize({ width: 375, height: 800 });
    await phone.goto(`${web.url}/usage`);
    await phone.getByTestId('kpi-calls').waitFor();
    await phone.getByRole('heading', { name: 'Recent activity' }).waitFor();
    const overflow = await phone.evaluate(() => {
      // Runs in the page (the tests' typings have no DOM).
      const win = globalThis as unknown as {
        innerWidth: number;
        document: { documentElement: { scrollWidth: number } };
      };
      return win.document.documentElement.scrollWidth - win.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    // Each activity row is a card there: its cost, the last column, is on screen, not scrolled away.
    const costOnScreen = async (row: Locator) => {
      const cost = row.locator('td[data-label="Cost"]');
      const box = (await cost.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(375);
      expect(await cost.textContent()).toMatch(/€/);
    };
    await costOnScreen(phone.locator('table.activity tbody tr').first());
    // The names shown beside the values are not read out again: the column headers name the cells.
    const row = await phone.locator('table.activity tbody tr').first().ariaSnapshot();
    expect(row).toMatch(/cell "€/);
    expect(row).not.toMatch(/cell "(Date|User|Cost)/);
    // No table reaches past the screen's edge (breakdowns, forecast, files and lists alike).
    for (const panel of ['Top users', 'Top workspace groups', 'Forecast', 'Files']) {
      await phone
        .locator('section', { has: phone.getByRole('heading', { name: panel }) })
        .locator('table')
        .waitFor();
    }
    expect(await tablesPastEdge(phone)).toEqual([]);
    // Chart labels keep their 11 px instead of shrinking with a drawing made for 640 px (they were 6).
    const label = (await phone.locator('figure.chart svg text').first().boundingBox())!;
    expect(label.height).toBeGreaterThanOrEqual(10);
    await screenshot(phone, 'overview-phone');
    // So is a day's itemized entry.
    await phone
      .locator('section', { has: phone.getByRole('heading', { name: 'Daily breakdown this month' }) })
      .locator('tbody a')
      .first()
      .click();
    await phone.getByRole('heading', { name: /Daily detail/ }).waitFor();
    await costOnScreen(phone.locator('table tbody tr').first());
  });

  it('lists every organization with its spend for the operator', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(OPERATOR_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'All organizations' }).waitFor();
    const { calls } = await api('/usage/summary?range=mtd');
    const row = page.locator('tr', { has: page.getByRole('button', { name: 'Northwind Labs' }) });
    await expect.poll(() => row.locator('td').last().textContent()).toBe(formatCount(calls));
    await screenshot(page, 'operator-orgs');
    await page.getByRole('button', { name: 'Northwind Labs' }).click();
    await page.getByTestId('kpi-calls').waitFor();
  });
});
