/**
 * A conversation in a real browser on the demo data: its title as the heading, each message's
 * processing time, and the cost breakdown by component a message expands to, as the API gives them.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, ownerPage, screenshot, startWebTally, type WebTally } from './support.ts';

describe('conversation page', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let ownerKey: string;

  beforeAll(async () => {
    // Five days always hold two whole weekdays: three days from early on a Monday held only a quiet
    // weekend, and no chat at this volume.
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 5 }), launchBrowser()]);
    ({ page, key: ownerKey } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  it('shows the title, processing times and a message’s cost breakdown', async () => {
    // The demo chat with the most messages.
    const [chat] = await web.tally.db.query<{ conversation_id: string }>(
      `SELECT conversation_id FROM events WHERE org_id = $1 AND feature = 'Chat'
        GROUP BY 1 ORDER BY count(DISTINCT message_id) DESC, 1 LIMIT 1`,
      [web.orgId],
    );
    const id = chat!.conversation_id;
    const res = await web.tally.call('GET', `/v1/orgs/${web.orgId}/conversations/${id}?limit=200`, {
      key: ownerKey,
    });
    const c = res.body;
    expect(c.title).toBeTruthy();
    await page.goto(`${web.url}/usage/conversations/${encodeURIComponent(id)}`);
    await page.getByRole('heading', { name: `Conversation: ${c.title}` }).waitFor();

    const tenths = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    const seconds = (ms: number) => `${tenths.format(ms / 1000)} s`;
    const rows = page.locator('table.table > tbody > tr');
    await expect.poll(() => rows.count()).toBe(c.data.length);
    const first = rows.first();
    const message = c.data[0];
    await first.getByText(seconds(message.processing_ms), { exact: true }).waitFor();
    await page.getByText(seconds(c.processing_ms), { exact: true }).first().waitFor();

    // Collapsed until asked for, then one line per component with its quantity and cost.
    const breakdown = first.locator('details');
    expect(await breakdown.locator('tr').first().isVisible()).toBe(false);
    await breakdown.getByText('Cost breakdown').click();
    const lines = breakdown.locator('tr');
    expect(message.components.length).toBeGreaterThan(0);
    await expect.poll(() => lines.count()).toBe(message.components.length);
    for (const [i, p] of message.components.entries()) {
      const text = (await lines.nth(i).locator('th, td').allTextContents()).join(' ');
      expect(text).toContain(p.component.replace(/_/g, ' '));
      expect(text).toContain(new Intl.NumberFormat('en-US').format(Number(p.quantity)));
      expect(text).toContain('€');
    }
    await screenshot(page, 'conversation-details');
  });
});
