/**
 * "Show more" on a breakdown walks one ranking while usage keeps coming in: the pages after the
 * first hold exactly the rows the first page's ranking had after it, with its figures, whatever was
 * recorded in between (new keys, keys overtaking others, events dated in the last hour). Usage the
 * walk cannot take back out (an event dated earlier than that, arriving late) makes the next page a
 * 409 naming the cursor, never a skipped or repeated row. Cursors are checked: a bad one is a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageBreakdownSchema } from '../src/http/routes/usage.ts';
import type { Ctx } from '../src/services/context.ts';
import { getUsageBreakdown } from '../src/services/usage/getUsageBreakdown.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

type Page = ReturnType<typeof UsageBreakdownSchema.parse>;

let sent = 0;
/** `n` events of one member and tool, each of `tokens` input tokens, dated `at`, features taking turns. */
const usage = (member: string, n: number, tokens: number, at: () => string) =>
  Array.from({ length: n }, () => ({
    id: `p${++sent}`,
    member,
    feature: sent % 2 ? 'Chat' : 'Agents',
    provider: 'openai',
    model: 'gpt-4o',
    occurred_at: at(),
    metadata: { tool: `tool-${member}` },
    usage: { input_tokens: tokens, output_tokens: 100 },
  }));

async function send(key: string, events: unknown[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
}

async function page(path: string, key: string, cursor?: string | null): Promise<Page> {
  const r = await t.call('GET', `${path}${cursor ? `&cursor=${cursor}` : ''}`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return UsageBreakdownSchema.parse(r.body);
}

/** The rows of the pages after `first`, following its cursor to the end. */
async function rest(path: string, key: string, first: Page) {
  const rows: Page['data'] = [];
  let cursor = first.next_cursor;
  for (let n = 0; cursor && n < 50; n++) {
    const next = await page(path, key, cursor);
    // Every page of the walk tells the first page's range, count of rows and total.
    expect({ range: next.range, groups: next.groups, total: next.total }).toEqual({
      range: first.range,
      groups: first.groups,
      total: first.total,
    });
    rows.push(...next.data);
    cursor = next.has_more ? next.next_cursor : null;
  }
  expect(cursor).toBeNull();
  return rows;
}

/** Twelve members, member i spending about i + 1 times the first, over the last 20 hours. */
async function orgWithUsage() {
  const { org, key } = await createOrgWithKey(t, { timezone: 'Europe/Berlin' });
  const events = Array.from({ length: 12 }, (_, i) =>
    usage(`m${String(i).padStart(2, '0')}`, 3, 1000 * (i + 1), () => minutesAgo(10 + ((sent * 97) % 1190))),
  ).flat();
  await send(key, events);
  return { org, key };
}

describe('breakdown paging while usage grows', () => {
  for (const [name, query] of [
    ['by member', 'by=member'],
    ['by tool (read from raw events in the hours)', 'by=tool'],
    ['by member under a feature filter', 'by=member&feature=Chat'],
  ] as const) {
    it(`${name}: the pages after the first are the rows of the first page's ranking, exactly`, async () => {
      const { org, key } = await orgWithUsage();
      const path = `/v1/orgs/${org.id}/usage/breakdown?${query}&limit=5`;
      const whole = await page(`/v1/orgs/${org.id}/usage/breakdown?${query}&limit=500`, key);
      const first = await page(path, key);
      expect(first.data).toEqual(whole.data.slice(0, 5));
      expect(first.has_more).toBe(true);

      // Recorded between the pages: a member from the second page overtakes everyone, a member
      // never seen before spends most, a first-page member spends more; dated now, a minute ago
      // and half an hour ago.
      const overtaker = whole.data[6]!.label.replace('tool-', '');
      await send(key, [
        ...usage(overtaker, 4, 60_000, () => minutesAgo(1)),
        ...usage('newcomer', 3, 90_000, () => new Date().toISOString()),
        ...usage(whole.data[0]!.label.replace('tool-', ''), 2, 5_000, () => minutesAgo(30)),
      ]);
      const after = await rest(path, key, first);
      expect([...first.data, ...after]).toEqual(whole.data);
      expect(new Set([...first.data, ...after].map((r) => r.key)).size).toBe(whole.data.length);

      // A walk started now sees the new usage.
      const fresh = await page(path, key);
      expect(fresh.total).not.toEqual(first.total);
      expect([...fresh.data, ...(await rest(path, key, fresh))].length).toBe(whole.data.length + 1);
    });
  }

  it('answers 409 naming the cursor when usage dated before the last hours arrived since the first page', async () => {
    const { org, key } = await orgWithUsage();
    const path = `/v1/orgs/${org.id}/usage/breakdown?by=member&limit=5`;
    const whole = await page(`/v1/orgs/${org.id}/usage/breakdown?by=member&limit=500`, key);
    const first = await page(path, key);
    // A late event dated two days ago, for a member of the second page.
    await send(
      key,
      usage('m05', 1, 500_000, () => minutesAgo(2 * 24 * 60)),
    );
    const stale = await t.call('GET', `${path}&cursor=${first.next_cursor}`, { key });
    expect(stale.status, JSON.stringify(stale.body)).toBe(409);
    expect(stale.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(stale.body).toMatchObject({ code: 'cursor_stale', param: 'cursor' });
    // Loaded again from the first page, the walk is whole.
    const again = await page(path, key);
    const rows = [...again.data, ...(await rest(path, key, again))];
    expect(rows.map((r) => r.key).sort()).toEqual(whole.data.map((r) => r.key).sort());
    expect(rows[0]!.label).toBe('m05');
  });

  it('pins the range at the first page: a page read hours later lists the same rows', async () => {
    const { org } = await orgWithUsage();
    const ctx: Ctx = {
      db: t.db,
      config: t.config,
      prices: t.prices,
      principal: { kind: 'operator', id: 'op_test' },
      requestId: 'req_test',
    };
    const query = { by: 'member' as const, range: '1d' as const, limit: 3 };
    const now = new Date();
    const whole = await getUsageBreakdown(ctx, org.id, { ...query, limit: 500 }, now);
    const first = await getUsageBreakdown(ctx, org.id, query, now);
    // Twelve hours on, the rolling day no longer holds the same hours, nor the same usage.
    const later = new Date(now.getTime() + 12 * 3_600_000);
    expect((await getUsageBreakdown(ctx, org.id, { ...query, limit: 500 }, later)).data).not.toEqual(
      whole.data,
    );
    expect((await getUsageBreakdown(ctx, org.id, query, later)).range).not.toEqual(first.range);
    const second = await getUsageBreakdown(ctx, org.id, { ...query, cursor: first.next_cursor! }, later);
    expect(second.range).toEqual(first.range);
    expect([...first.data, ...second.data]).toEqual(whole.data.slice(0, 6));
  });

  it('follows rows keyed on 200 characters of any script', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Europe/Berlin' });
    const tools = ['é', '語', '🧪'].map((c, i) => `${c.repeat(199)}${i}`);
    await send(
      key,
      tools.map((tool, i) => ({
        ...usage('ana', 1, 1000 * (i + 1), () => minutesAgo(5))[0],
        metadata: { tool },
      })),
    );
    const path = `/v1/orgs/${org.id}/usage/breakdown?by=tool&limit=1`;
    const first = await page(path, key);
    const rows = [...first.data, ...(await rest(path, key, first))];
    expect(rows.map((r) => r.key)).toEqual([...tools].reverse());
  });

  it('refuses a cursor sent with another query (400), or after the org changed its zone (409)', async () => {
    const { org, key } = await orgWithUsage();
    const path = `/v1/orgs/${org.id}/usage/breakdown?by=member&limit=5`;
    const first = await page(path, key);
    expect(first.next_cursor).not.toBeNull();
    // Another page size is the same query.
    expect((await t.call('GET', `${path}0&cursor=${first.next_cursor}`, { key })).status).toBe(200);
    for (const other of [
      `/v1/orgs/${org.id}/usage/breakdown?by=feature&limit=5`,
      `${path}&range=7d`,
      `${path}&feature=Chat`,
    ]) {
      const r = await t.call('GET', `${other}&cursor=${first.next_cursor}`, { key });
      expect([r.status, r.body.param, r.body.code], other).toEqual([400, 'cursor', 'invalid_cursor']);
      expect(r.body.detail).toContain('another query');
    }
    const moved = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { timezone: 'Asia/Tokyo' } });
    expect(moved.status).toBe(200);
    const stale = await t.call('GET', `${path}&cursor=${first.next_cursor}`, { key });
    expect([stale.status, stale.body.param, stale.body.code]).toEqual([409, 'cursor', 'cursor_stale']);
  });

  it('refuses a cursor it did not hand out with a 400 naming it', async () => {
    const { org, key } = await orgWithUsage();
    const path = `/v1/orgs/${org.id}/usage/breakdown?by=member&limit=5`;
    const first = await page(path, key);
    const parts = JSON.parse(Buffer.from(first.next_cursor!, 'base64url').toString());
    expect(parts).toHaveLength(8);
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // The forms earlier versions handed out (a weight and key alone; no fingerprints): stale, not
    // the client's fault.
    for (const earlier of [parts.slice(4, 6), parts.slice(0, 6)]) {
      const r = await t.call('GET', `${path}&cursor=${encode(earlier)}`, { key });
      expect([r.status, r.body.param, r.body.code]).toEqual([409, 'cursor', 'cursor_stale']);
    }
    for (const cursor of [
      'nope',
      encode(['yesterday', ...parts.slice(1)]),
      encode([parts[0], '-1', ...parts.slice(2)]),
      encode([...parts.slice(0, 4), '1.5', ...parts.slice(5)]),
      encode([...parts.slice(0, 5), 'a\u0000b', ...parts.slice(6)]),
      encode([...parts.slice(0, 6), 'forged', parts[7]]),
      encode([...parts, 'more']),
    ]) {
      const r = await t.call('GET', `${path}&cursor=${cursor}`, { key });
      expect([r.status, r.body.param, r.body.code], cursor).toEqual([400, 'cursor', 'invalid_cursor']);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
