/**
 * The overview's Files panel and its By tool and By integration cards in a real browser, checked
 * against what the API answers over HTTP for the same query: each file's size, extracted tokens,
 * processing cost and reuse, a page at a time and under the period and user filters; each tool's and
 * integration's spend, requests, tokens and share. An org of its own, whose first usage names no
 * file, tool or integration: the panel says so and the cards stay hidden until events sent here name
 * some.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFormats, type Formats } from '../../web/src/format.ts';
import { launchBrowser, openPage, screenshot, signIn, startWebTally, type WebTally } from './support.ts';

interface FileRow {
  id: string;
  name: string | null;
  size_bytes: number | null;
  extracted_tokens: number | null;
  processing: { calls: number; credits: string; cost: string };
  conversations: number;
  calls: number;
  last_used_at: string;
}
interface BreakdownRow {
  key: string;
  label: string;
  credits: string;
  cost: string;
  calls: number;
  share: string;
  tokens: { total: number };
  failed_calls: number;
  error_rate: string;
  top_error: string | null;
}

const EMPTY = 'No files were used in this period.';

describe('files, tools and integrations on the overview', () => {
  let web: WebTally;
  let browser: Browser;
  let page: Page;
  let ownerKey: string;
  let orgId: string;
  let f: Formats;

  beforeAll(async () => {
    [web, browser] = await Promise.all([startWebTally({ volume: 0.02, days: 3 }), launchBrowser()]);
    const org = await web.tally.call('POST', '/v1/orgs', {
      body: { name: 'Files Co', currency: 'EUR', timezone: 'Europe/Berlin' },
    });
    orgId = org.body.id;
    ownerKey = (
      await web.tally.call('POST', `/v1/orgs/${orgId}/api_keys`, { body: { name: 'owner', role: 'owner' } })
    ).body.key;
    // Plain calls, now and at noon (UTC, the same day in Berlin) on the last day of the org's last
    // month, at most 32 days ago: usage that names no file, tool or integration.
    const [year, month] = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin' })
      .format(new Date())
      .split('-')
      .map(Number) as [number, number];
    const lastMonthsLastNoon = Date.UTC(year, month - 1, 0, 12);
    const plain = [Date.now() - 60_000, lastMonthsLastNoon].map((at, i) => ({
      id: `plain-${i}`,
      member: 'u_1001',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      occurred_at: new Date(at).toISOString(),
      usage: { input_tokens: 1_000, output_tokens: 200 },
    }));
    const sent = await web.tally.call('POST', '/v1/events', { key: ownerKey, body: { events: plain } });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted']);
    page = await openPage(browser);
    await signIn(page, web, ownerKey);
    f = createFormats(org.body.currency, org.body.timezone, 'en-US');
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  /** A GET over HTTP on the listening Tally with the org's key, as a client of the API sees it. */
  const get = async (path: string): Promise<any> => {
    const res = await fetch(`${web.url}${path}`, { headers: { authorization: `Bearer ${ownerKey}` } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const usage = (path: string) => get(`/v1/orgs/${orgId}${path}`);
  const panel = (heading: string) =>
    page.locator('section', { has: page.getByRole('heading', { name: heading, exact: true }) });
  const rowsOf = (heading: string) => panel(heading).locator('tbody tr');
  const cells = async (heading: string) => {
    const rows = rowsOf(heading);
    const n = await rows.count();
    return Promise.all(Array.from({ length: n }, (_, i) => rows.nth(i).locator('th, td').allTextContents()));
  };

  /** Every file of the query, all pages, as the API lists them. */
  const allFiles = async (query: string): Promise<FileRow[]> => {
    const out: FileRow[] = [];
    let cursor: string | null = null;
    do {
      const page = await usage(`/usage/files?${query}&limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      out.push(...page.data);
      cursor = page.has_more ? page.next_cursor : null;
    } while (cursor);
    return out;
  };
  const plural = (n: number, noun: string) => `${f.count(n)} ${noun}${n === 1 ? '' : 's'}`;
  /** A file's row as a reader sees it: header cell, then size, tokens, processing cost and reuse. */
  const fileRow = (file: FileRow) => [
    `${file.name ?? file.id}Last used ${f.dateTime(file.last_used_at)}`,
    file.size_bytes === null ? '—' : f.fileSize(file.size_bytes),
    file.extracted_tokens === null ? '—' : f.count(file.extracted_tokens),
    `${f.credits(file.processing.credits)} credits${f.money(file.processing.cost)}`,
    `${plural(file.conversations, 'conversation')}${plural(file.calls, 'call')}`,
  ];
  const breakdownRow = (row: BreakdownRow) => [
    row.label,
    `${f.credits(row.credits)} credits${f.money(row.cost)}`,
    f.count(row.calls),
    f.count(row.tokens.total),
    row.failed_calls === 0
      ? f.percent('0')
      : `${f.percent(row.error_rate)}${row.top_error ? ` · ${row.top_error}` : ''}`,
    f.share(row.share),
  ];

  /** Refresh, and wait until the overview has the answers to the tool and integration breakdowns. */
  const refreshed = async () => {
    const answered = (by: string) =>
      page.waitForResponse((r) => r.url().includes('/usage/breakdown') && r.url().includes(`by=${by}`));
    const both = Promise.all([answered('tool'), answered('integration')]);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await both;
    // The answers are rendered in the next frames.
    await page.waitForTimeout(300);
  };

  it('says no files were uploaded and hides the tool and integration cards for usage that names none', async () => {
    await page.getByRole('tab', { name: '30 days' }).click();
    for (const [by, none] of [
      ['tool', 'No tool'],
      ['integration', 'No integration'],
    ]) {
      const answer = await usage(`/usage/breakdown?range=30d&by=${by}&limit=5`);
      expect(answer.data.map((r: BreakdownRow) => [r.key, r.label])).toEqual([['', none]]);
    }
    expect((await usage('/usage/files?range=30d')).data).toEqual([]);

    await refreshed();
    await expect.poll(() => panel('Files').locator('.empty').textContent()).toBe(EMPTY);
    expect(await rowsOf('Files').count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'By tool' }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'By integration' }).count()).toBe(0);
  });

  describe('with events that name files, tools and integrations', () => {
    let memberId: string;

    beforeAll(async () => {
      // Seconds ago, not minutes: the calls are this month's in Berlin (none of last month's) unless
      // the test runs in the month's first 100 seconds.
      const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
      const call = (id: string, secondsAgo: number, extra: Record<string, unknown>) => ({
        id,
        member: 'u_1001',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: at(secondsAgo),
        usage: { input_tokens: 15_000 + secondsAgo, output_tokens: 700 },
        ...extra,
      });
      const report = {
        id: 'f-report',
        name: 'Annual_Report.pdf',
        size_bytes: 2_300_000,
        extracted_tokens: 12_500,
      };
      const memo = { id: 'f-memo', name: 'memo.txt', size_bytes: 512, extracted_tokens: 300 };
      const events = [
        // Uploaded into chat 1, where one call extracted both files; the report reused in chats 2 and 3.
        call('t-c1-m1', 100, {
          conversation_id: 'files-c1',
          message_id: 'm1',
          metadata: {
            files: [
              { ...report, processed: true },
              { ...memo, processed: true },
            ],
          },
        }),
        call('t-c1-m2', 95, {
          conversation_id: 'files-c1',
          message_id: 'm2',
          metadata: { files: [{ id: 'f-report' }] },
        }),
        call('t-c2-m1', 90, { conversation_id: 'files-c2', metadata: { files: [{ id: 'f-report' }] } }),
        call('t-c3-m1', 85, {
          conversation_id: 'files-c3',
          member: 'u_1002',
          metadata: { files: [{ id: 'f-report' }] },
        }),
        // More files than a page: one without a name or a size, the others scanned one by one.
        call('t-noname', 80, { metadata: { files: [{ id: 'f-unnamed', processed: true }] } }),
        ...Array.from({ length: 10 }, (_, i) =>
          call(`t-scan-${i}`, 70 - i, {
            feature: 'File processing',
            metadata: {
              files: [
                {
                  id: `f-scan-${i}`,
                  name: `scan-${String(i).padStart(2, '0')}.png`,
                  size_bytes: 45_000 * (i + 1),
                  extracted_tokens: 800 + i,
                  processed: true,
                },
              ],
            },
          }),
        ),
        // Tools the calls used, and calls made through integrations.
        call('t-search-1', 50, { feature: 'Web search', metadata: { tool: 'Web search' } }),
        call('t-search-2', 49, { feature: 'Web search', metadata: { tool: 'Web search' } }),
        call('t-doc-1', 48, {
          usage: { input_tokens: 8_500, output_tokens: 300 },
          metadata: { tool: 'Document analysis' },
        }),
        call('t-gmail-1', 47, { surface: 'gmail', usage: { input_tokens: 45_230, output_tokens: 900 } }),
        call('t-slack-1', 46, { surface: 'slack' }),
        call('t-slack-2', 45, { surface: 'slack', metadata: { tool: 'Web search', error: 'rate_limited' } }),
      ];
      const res = await fetch(`${web.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ownerKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events }),
      });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: { id: string; status: string }[] };
      expect(results.filter((r) => r.status !== 'accepted')).toEqual([]);
      const members = await usage('/members?limit=100');
      memberId = members.data.find((m: { external_id: string }) => m.external_id === 'u_1002').id;
      // The user filter lists the members known when the page loaded: u_1002 came with these events.
      await page.reload();
      await page.getByTestId('kpi-calls').waitFor();
      await page.getByRole('tab', { name: '30 days' }).click();
      await refreshed();
    });

    it('lists each file with its size, extracted tokens, processing cost and reuse, a page at a time', async () => {
      const files = await allFiles('range=30d');
      expect(files.length).toBe(13);
      const first = await usage('/usage/files?range=30d&limit=10');
      expect(first.has_more).toBe(true);
      await expect.poll(() => rowsOf('Files').count()).toBe(10);
      expect(await cells('Files')).toEqual(first.data.map(fileRow));

      await panel('Files').getByRole('button', { name: 'Show more' }).click();
      await expect.poll(() => rowsOf('Files').count()).toBe(files.length);
      const shown = await cells('Files');
      expect(shown).toEqual(files.map(fileRow));
      expect(await panel('Files').getByRole('button', { name: 'Show more' }).count()).toBe(0);
      // As the reader checks them: 2.3 MB, 12,500 tokens, reused in three chats; no name or size said so.
      const report = shown.find((row) => row[0]!.startsWith('Annual_Report.pdf'))!;
      expect(report.slice(1, 3)).toEqual(['2.3 MB', '12,500']);
      expect(report[4]).toBe('3 conversations4 calls');
      expect(shown.find((row) => row[0]!.startsWith('memo.txt'))![1]).toBe('512 bytes');
      const unnamed = shown.find((row) => row[0]!.startsWith('f-unnamed'))!;
      expect(unnamed.slice(1, 3)).toEqual(['—', '—']);
      expect(unnamed[4]).toBe('0 conversations1 call');
      await screenshot(page, 'overview-files');
    });

    it('shows the files of the selected period and user, and says when there are none', async () => {
      await page.getByLabel('User', { exact: true }).selectOption(memberId);
      const theirs = await allFiles(`range=30d&member=${memberId}`);
      expect(theirs.map((file) => [file.id, file.conversations, file.calls])).toEqual([['f-report', 1, 1]]);
      await expect.poll(() => cells('Files')).toEqual(theirs.map(fileRow));

      await page.getByLabel('User', { exact: true }).selectOption('');
      await page.getByRole('tab', { name: 'Last month' }).click();
      expect(await allFiles('range=last_month')).toEqual([]);
      await expect.poll(() => panel('Files').locator('.empty').textContent()).toBe(EMPTY);
      expect(await rowsOf('Files').count()).toBe(0);
    });

    it('shows each tool and integration with its spend, requests, tokens, error rate and share', async () => {
      await page.getByRole('tab', { name: '30 days' }).click();
      for (const [by, heading, named] of [
        ['tool', 'By tool', ['Web search', 'Document analysis']],
        ['integration', 'By integration', ['gmail', 'slack']],
      ] as const) {
        const answer = await usage(`/usage/breakdown?range=30d&by=${by}&limit=5`);
        expect(answer.unit).toBe('credits');
        expect(answer.has_more).toBe(false);
        expect(answer.data.map((r: BreakdownRow) => r.label).sort()).toEqual(
          [...named, by === 'tool' ? 'No tool' : 'No integration'].sort(),
        );
        await expect.poll(() => cells(heading)).toEqual(answer.data.map(breakdownRow));
        expect(await panel(heading).locator('thead th').allTextContents()).toEqual([
          by === 'tool' ? 'Tool' : 'Integration',
          'Spend',
          'Calls',
          'Tokens',
          'Errors',
          'Share',
        ]);
      }
      // One of Slack's two calls failed, and the activity log says so on its row.
      expect((await cells('By integration')).find((row) => row[0] === 'slack')![4]).toBe(
        '50% · rate_limited',
      );
      await expect
        .poll(() => panel('Recent activity').locator('.tag.tone-warn').allTextContents())
        .toEqual(['Failed: rate_limited']);
      const summary = await usage('/usage/summary?range=30d');
      expect(summary.failed_calls).toBe(1);
      expect(await page.getByTestId('kpi-failed').textContent()).toBe(
        `1 failed (${f.percent(summary.error_rate)})`,
      );
      // Three calls searched the web (one of them through Slack), with the tokens they sent and got.
      const search = (await cells('By tool')).find((row) => row[0] === 'Web search')!;
      expect(search[2]).toBe('3');
      expect(search[3]).toBe(f.count(15_050 + 15_049 + 15_045 + 3 * 700));
      await screenshot(page, 'overview-tools-integrations');
    });

    it('hides the cards for a period whose usage names no tool or integration', async () => {
      await page.getByRole('tab', { name: 'Last month' }).click();
      for (const by of ['tool', 'integration']) {
        const answer = await usage(`/usage/breakdown?range=last_month&by=${by}&limit=5`);
        expect(answer.data.length).toBe(1);
        expect(answer.data[0].key).toBe('');
      }
      await refreshed();
      expect(await page.getByRole('heading', { name: 'By tool' }).count()).toBe(0);
      expect(await page.getByRole('heading', { name: 'By integration' }).count()).toBe(0);
      // The period's other cards are there: the hidden ones are not still loading.
      await expect.poll(() => rowsOf('Top workspaces').count()).toBeGreaterThan(0);
    });
  });
});
