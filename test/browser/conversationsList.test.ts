/**
 * The overview's conversations in a real browser on the demo data: the rows are the API's
 * (GET /conversations) for the overview's period and user, latest or most spent first, Show more
 * appends the API's next page, a row opens the conversation's page, and a period or user without
 * conversations says so.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFormats, type Formats } from '../../web/src/format.ts';
import type { UsageConversation, UsageConversations } from '../../web/src/types.ts';
import { moneyNote, spendText } from '../../web/src/units.ts';
import {
  demoOrgGet,
  launchBrowser,
  ownerPage,
  SCREENS_DIR,
  startWebTally,
  type WebTally,
} from './support.ts';

/** Rows a page of the panel holds (web/src/components/Conversations.tsx). */
const PAGE = 10;
/** A host app user whose one chat has no title; known only by the event, so labelled by its id. */
const UNTITLED_USER = 'u_untitled_chat';
/** A member who never chatted. */
const QUIET_NAME = 'Quiet Quinn';

describe('the conversations on the overview', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let formats: Formats;
  let quietId: string;

  const usage = (path: string) => demoOrgGet(web, path);
  const conversations = (query: Record<string, string>): Promise<UsageConversations> =>
    usage(`/conversations?${new URLSearchParams({ limit: String(PAGE), ...query })}`);

  const panel = () => page.getByRole('region', { name: 'Conversations', exact: true });
  const shownRows = () =>
    panel()
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)));
  /** A row as the panel shows it: title and last activity, starter, messages, tokens, spend and money. */
  const rowOf = (answer: UsageConversations) => (c: UsageConversation) => [
    `${c.title ?? 'Untitled conversation'}Last active ${formats.dateTime(c.last_activity_at)}`,
    c.member.label,
    formats.count(c.messages),
    formats.count(c.tokens.total),
    spendText(formats, answer.unit, c) + (moneyNote(formats, answer.unit, c, answer.currency) ?? ''),
  ];
  const rowsOf = (answer: UsageConversations) => answer.data.map(rowOf(answer));

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.05, days: 40 }), launchBrowser()]);
    const org = await usage('');
    formats = createFormats(org.currency, org.timezone, 'en-US');
    const sent = await web.tally.call('POST', '/v1/events', {
      body: {
        events: [
          {
            id: 'untitled-chat-1',
            org_id: web.orgId,
            member: UNTITLED_USER,
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            // Now, after the demo's usage (made up to the moment it was seeded), so this chat is
            // the latest: a minute back, a demo chat of the last minute came first.
            occurred_at: new Date().toISOString(),
            conversation_id: 'untitled-chat',
            message_id: 'untitled-chat-m1',
            usage: { input_tokens: 1_500, output_tokens: 700 },
          },
        ],
      },
    });
    expect(sent.body.results[0].status).toBe('accepted');
    const quiet = await web.tally.call('POST', `/v1/orgs/${web.orgId}/members`, {
      body: { external_id: 'u_quiet', name: QUIET_NAME },
    });
    quietId = quiet.body.id;
    // Signed in after the new usage and member, so the user filter lists them.
    ({ page } = await ownerPage(browser, web));
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  it("shows the API's first page for the period, latest first, an untitled chat as such", async () => {
    const first = await conversations({ range: '30d' });
    expect(first.has_more).toBe(true);
    expect(first.data[0]!.title).toBeNull();
    expect(first.data[0]!.member.label).toBe(UNTITLED_USER);
    await expect.poll(() => shownRows()).toEqual(rowsOf(first));
    expect(await panel().getByRole('button', { name: 'Latest' }).getAttribute('aria-pressed')).toBe('true');
    await panel().screenshot({ path: `${SCREENS_DIR}/overview-conversations.png` });

    await page.getByRole('tab', { name: 'Last month' }).click();
    const lastMonth = await conversations({ range: 'last_month' });
    expect(lastMonth.data.length).toBeGreaterThan(0);
    expect(rowsOf(lastMonth)).not.toEqual(rowsOf(first));
    await expect.poll(() => shownRows()).toEqual(rowsOf(lastMonth));
    await page.getByRole('tab', { name: '30 days' }).click();
    await expect.poll(() => shownRows()).toEqual(rowsOf(first));
  });

  it("appends the API's next page with Show more", async () => {
    const first = await conversations({ range: '30d' });
    const next = await conversations({ range: '30d', cursor: first.next_cursor! });
    expect(next.data.length).toBeGreaterThan(0);
    await expect.poll(() => shownRows()).toEqual(rowsOf(first));
    await panel().getByRole('button', { name: 'Show more' }).click();
    await expect.poll(() => shownRows()).toEqual([...rowsOf(first), ...rowsOf(next)]);
  });

  it('orders by spend with Most spent', async () => {
    const latest = await conversations({ range: '30d' });
    const mostSpent = await conversations({ range: '30d', sort: 'credits' });
    expect(rowsOf(mostSpent)).not.toEqual(rowsOf(latest));
    await panel().getByRole('button', { name: 'Most spent' }).click();
    await expect.poll(() => shownRows()).toEqual(rowsOf(mostSpent));
    await panel().getByRole('button', { name: 'Latest' }).click();
    await expect.poll(() => shownRows()).toEqual(rowsOf(latest));
  });

  it("narrows to the chosen user's conversations, as the API answers for that member", async () => {
    const members = (await usage('/members?limit=100')).data as { id: string; name: string }[];
    const lukas = members.find((m) => m.name === 'Lukas Schneider')!;
    const everyone = await conversations({ range: '30d' });
    const his = await conversations({ range: '30d', member: lukas.id });
    expect(his.data.length).toBeGreaterThan(0);
    expect(rowsOf(his)).not.toEqual(rowsOf(everyone));
    await page.getByLabel('User', { exact: true }).selectOption(lukas.id);
    await expect.poll(() => shownRows()).toEqual(rowsOf(his));
    await page.getByLabel('User', { exact: true }).selectOption('');
    await expect.poll(() => shownRows()).toEqual(rowsOf(everyone));
  });

  it('opens a conversation from its row', async () => {
    const first = await conversations({ range: '30d' });
    const chat = first.data.find((c) => c.title !== null)!;
    await panel().getByRole('link', { name: chat.title!, exact: true }).first().click();
    await page.getByRole('heading', { name: `Conversation: ${chat.title}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe(
      `/usage/conversations/${encodeURIComponent(chat.conversation_id)}`,
    );
  });

  it('says so when the period or the user has no conversations', async () => {
    await page.goto(`${web.url}/usage`);
    const empty = () => panel().getByText('No conversations in this period.');
    expect((await conversations({ range: '30d', member: quietId })).data).toEqual([]);
    await page.getByLabel('User', { exact: true }).selectOption(quietId);
    await empty().waitFor();
    expect(await panel().locator('tbody tr').count()).toBe(0);
    await page.getByLabel('User', { exact: true }).selectOption('');
    await expect.poll(() => panel().locator('tbody tr').count()).toBe(PAGE);

    const longAgo = { range: 'custom', from: '2020-01-01', to: '2020-01-31' };
    expect((await conversations(longAgo)).data).toEqual([]);
    await page.getByRole('tab', { name: 'Custom' }).click();
    await page.getByLabel('From').fill(longAgo.from);
    await page.getByLabel('To').fill(longAgo.to);
    await empty().waitFor();
    expect(await panel().locator('tbody tr').count()).toBe(0);
  });
});
