/**
 * The conversations list: each conversation active in the range with its title (as its detail page
 * shows it), the member who started it, first and last activity, calls, messages, tokens, credits
 * and cost, exactly the sums of its events in the range; newest activity or most spent first,
 * paginated without loss or repeat; narrowed by the usage filters; isolated per org.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversationUsageSchema, UsageConversationsSchema } from '../src/http/routes/usageInsights.ts';
import { ProblemSchema } from '../src/http/schemas.ts';
import { createOrgWithKey, minutesAgo, OPERATOR_KEY, startTally, type TestTally } from './support/harness.ts';
import { everyPage } from './support/paging.ts';
import { cost, credits, sum } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

type Item = ReturnType<typeof UsageConversationsSchema.parse>['data'][number];

const TWO_DAYS = 2 * 24 * 60;

interface TestEvent {
  id: string;
  member: string;
  feature: string;
  occurred_at: string;
  usage: Record<string, number>;
  conversation_id?: string;
  message_id?: string;
  [field: string]: unknown;
}

const call = (id: string, minutes: number, extra: Record<string, unknown> = {}): TestEvent => ({
  id,
  member: 'ana',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(minutes),
  usage: { input_tokens: 1000 + minutes, output_tokens: 300 + minutes },
  ...extra,
});

/** What ingest answered for each event, by id. */
async function send(key: string, events: { id: string }[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
  return new Map<string, { credits: string; cost: string }>(
    r.body.results.map((res: { id: string; credits: string; cost: string }) => [res.id, res]),
  );
}

async function page(orgId: string, query: string, key?: string) {
  const r = await t.call('GET', `/v1/orgs/${orgId}/conversations?${query}`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return UsageConversationsSchema.parse(r.body);
}

/** Every page of the list, one conversation at a time. */
async function allPages(orgId: string, key: string, query: string): Promise<Item[]> {
  const pages = await everyPage(
    t,
    `/v1/orgs/${orgId}/conversations?${query}&limit=1`,
    key,
    (body) => UsageConversationsSchema.parse(body),
    20,
  );
  for (const p of pages) expect(p.data.length).toBeLessThanOrEqual(1);
  return pages.flatMap((p) => p.data);
}

describe('conversations list', () => {
  let org: { id: string };
  let key: string;
  let answers: Map<string, { credits: string; cost: string }>;
  let events: TestEvent[];

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t, { currency: 'EUR', timezone: 'UTC' }));
    await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'ana', name: 'Ana Lopez', email: 'ana@example.com' },
    });
    const cy = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'cy', name: 'Cy Gone' },
    });
    events = [
      // Q3: Ana starts it (two calls of message m1, one of m2), Bo adds an agent call later.
      call('q-1', 30, {
        conversation_id: 'conv-q3',
        message_id: 'm1',
        metadata: { conversation_title: '  Q3 Marketing Analysis\n' },
      }),
      call('q-2', 29, {
        conversation_id: 'conv-q3',
        message_id: 'm1',
        usage: { input_tokens: 5678, output_tokens: 77, cache_read_tokens: 1234 },
      }),
      call('q-3', 20, { conversation_id: 'conv-q3', message_id: 'm2', model: 'gpt-4o-mini' }),
      call('q-4', 15, {
        conversation_id: 'conv-q3',
        message_id: 'm3',
        member: 'bo',
        feature: 'Agents',
        metadata: { conversation_title: ' ' },
      }),
      // Before the range: left out of the totals, yet its title is the conversation's.
      call('h-0', TWO_DAYS, {
        conversation_id: 'conv-hiring',
        member: 'bo',
        metadata: { conversation_title: 'Hiring plan' },
      }),
      // Hiring: Bo alone, messages without a message_id (each call its own message).
      call('h-1', 40, {
        conversation_id: 'conv-hiring',
        member: 'bo',
        usage: { input_tokens: 90_000, output_tokens: 9_000 },
      }),
      call('h-2', 35, { conversation_id: 'conv-hiring', member: 'bo' }),
      // Cy's chat, newest, then Cy is removed: "Unknown user".
      call('c-1', 10, { conversation_id: 'conv-cy', member: 'cy', message_id: 'x' }),
      // No conversation: never listed. A conversation wholly before the range: not listed.
      call('n-1', 5),
      call('o-1', TWO_DAYS, { conversation_id: 'conv-old' }),
    ];
    answers = await send(key, events);
    const removed = await t.call('DELETE', `/v1/orgs/${org.id}/members/${cy.body.id}`, { key });
    expect(removed.status).toBeLessThan(300);
  });

  /** The expected totals of a conversation: the sums of its events in the range (the last day). */
  function expected(conversation: string, only: (e: TestEvent) => boolean = () => true) {
    const mine = events.filter(
      (e) => e.conversation_id === conversation && e.occurred_at > minutesAgo(24 * 60) && only(e),
    );
    return {
      calls: mine.length,
      messages: new Set(mine.map((e) => e.message_id ?? e.id)).size,
      input: sum(mine, (e) => BigInt(e.usage.input_tokens ?? 0)),
      output: sum(mine, (e) => BigInt(e.usage.output_tokens ?? 0)),
      cacheRead: sum(mine, (e) => BigInt(e.usage.cache_read_tokens ?? 0)),
      credits: sum(mine, (e) => credits(answers.get(e.id)!.credits)),
      cost: sum(mine, (e) => cost(answers.get(e.id)!.cost)),
      first: mine[0]!.occurred_at,
      last: mine[mine.length - 1]!.occurred_at,
    };
  }

  function expectTotals(item: Item, e: ReturnType<typeof expected>) {
    expect([item.calls, item.messages]).toEqual([e.calls, e.messages]);
    expect(item.tokens).toEqual({
      input: Number(e.input),
      output: Number(e.output),
      cache_read: Number(e.cacheRead),
      cache_write: 0,
      total: Number(e.input + e.output),
    });
    expect(credits(item.credits)).toBe(e.credits);
    expect(cost(item.cost)).toBe(e.cost);
    expect(e.credits).toBeGreaterThan(0n);
    expect([item.first_activity_at, item.last_activity_at]).toEqual([e.first, e.last]);
  }

  it('lists each conversation with the exact sums of its events, its title and who started it, newest first', async () => {
    const list = await page(org.id, 'range=1d', key);
    expect(list).toMatchObject({ unit: 'credits', currency: 'EUR', sort: 'last_activity', has_more: false });
    expect(list.data.map((c) => c.conversation_id)).toEqual(['conv-cy', 'conv-q3', 'conv-hiring']);
    const [cy, q3, hiring] = list.data as [Item, Item, Item];
    for (const item of list.data) {
      expectTotals(item, expected(item.conversation_id));
      expect(item.currency).toBe('EUR');
      expect(item.provider_cost_usd).toBeNull();
      // The same title as the conversation's detail page.
      const detail = await t.call('GET', `/v1/orgs/${org.id}/conversations/${item.conversation_id}`, { key });
      expect(item.title).toBe(ConversationUsageSchema.parse(detail.body).title);
    }
    expect([q3.title, hiring.title, cy.title]).toEqual(['Q3 Marketing Analysis', 'Hiring plan', null]);
    expect(q3.member).toMatchObject({ label: 'Ana Lopez', email: 'ana@example.com', removed: false });
    expect(q3.members).toBe(2);
    expect(hiring.member).toMatchObject({ label: 'bo', external_id: 'bo', removed: false });
    expect(cy.member).toMatchObject({ label: 'Unknown user', name: null, external_id: null, removed: true });
  });

  it('pages through every conversation once, by last activity and by credits', async () => {
    const byActivity = await allPages(org.id, key, 'range=1d');
    expect(byActivity.map((c) => c.conversation_id)).toEqual(['conv-cy', 'conv-q3', 'conv-hiring']);
    const byCredits = await allPages(org.id, key, 'range=1d&sort=credits');
    const ranked = ['conv-cy', 'conv-q3', 'conv-hiring'].sort((a, b) =>
      Number(expected(b).credits - expected(a).credits),
    );
    expect(byCredits.map((c) => c.conversation_id)).toEqual(ranked);
    expect(ranked[0]).toBe('conv-hiring');
    for (const item of byCredits) expectTotals(item, expected(item.conversation_id));
  });

  it('narrows to the events a member or feature filter keeps', async () => {
    const ana = await page(org.id, 'range=1d&member=ana', key);
    expect(ana.data.map((c) => c.conversation_id)).toEqual(['conv-q3']);
    expectTotals(
      ana.data[0]!,
      expected('conv-q3', (e) => e.member === 'ana'),
    );
    const agents = await page(org.id, 'range=1d&feature=Agents', key);
    expect(agents.data.map((c) => [c.conversation_id, c.member.label])).toEqual([['conv-q3', 'bo']]);
    expectTotals(
      agents.data[0]!,
      expected('conv-q3', (e) => e.feature === 'Agents'),
    );
    expect((await page(org.id, 'range=1d&member=nobody', key)).data).toEqual([]);
  });

  it('counts the range only: a wider range brings older conversations and events back', async () => {
    const week = await page(org.id, 'range=7d', key);
    expect(week.data.map((c) => c.conversation_id)).toEqual([
      'conv-cy',
      'conv-q3',
      'conv-hiring',
      'conv-old',
    ]);
    expect(week.data.find((c) => c.conversation_id === 'conv-hiring')!.calls).toBe(3);
  });

  it('shows provider cost to the operator, who reads any org', async () => {
    const list = await page(org.id, 'range=1d', OPERATOR_KEY);
    expect(list.data).toHaveLength(3);
    for (const item of list.data) expect(item.provider_cost_usd).toMatch(/^\d+(\.\d+)?$/);
  });
});

describe('conversations list: errors and security', () => {
  it('hides another org with a 404 and no data', async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    await send(a.key, [
      call('secret', 3, { conversation_id: 'conv-secret', metadata: { conversation_title: 'Secret' } }),
    ]);
    for (const query of ['', '?range=1d&sort=credits']) {
      const r = await t.call('GET', `/v1/orgs/${a.org.id}/conversations${query}`, { key: b.key });
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(ProblemSchema.parse(r.body).code).toBe('not_found');
      expect(JSON.stringify(r.body)).not.toMatch(/secret/i);
    }
    expect((await page(a.org.id, 'range=1d', a.key)).data.map((c) => c.title)).toEqual(['Secret']);
    expect((await t.call('GET', `/v1/orgs/${a.org.id}/conversations`, { key: '' })).status).toBe(401);
  });

  it('names the bad parameter in a problem answer', async () => {
    const { org, key } = await createOrgWithKey(t);
    await send(key, [
      call('e1', 3, { conversation_id: 'conv-1' }),
      call('e2', 2, { conversation_id: 'conv-2' }),
    ]);
    const first = await page(org.id, 'range=1d&limit=1', key);
    expect(first.has_more).toBe(true);
    const bad: [string, number, string][] = [
      ['range=2d', 400, 'range'],
      ['range=custom&from=soon&to=2026-01-01', 400, 'from'],
      ['range=custom&from=2026-01-02&to=2026-01-01', 400, 'to'],
      ['limit=0', 400, 'limit'],
      ['limit=201', 400, 'limit'],
      ['limit=ten', 400, 'limit'],
      ['sort=newest', 400, 'sort'],
      ['cursor=nope', 400, 'cursor'],
      // A cursor of one sort is no cursor of the other.
      [`sort=credits&cursor=${first.next_cursor}`, 400, 'cursor'],
      ['colour=red', 422, 'colour'],
    ];
    for (const [query, status, param] of bad) {
      const r = await t.call('GET', `/v1/orgs/${org.id}/conversations?${query}`, { key });
      expect(r.headers.get('content-type'), query).toMatch(/^application\/problem\+json/);
      expect([r.status, ProblemSchema.parse(r.body).param], query).toEqual([status, param]);
    }
  });
});

describe('conversations list: other billing modes', () => {
  it('ranks a BYOM org by its USD cost and answers in its unit', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    await send(key, [
      call('small', 3, { conversation_id: 'conv-small', usage: { input_tokens: 10, output_tokens: 5 } }),
      call('big', 4, { conversation_id: 'conv-big', usage: { input_tokens: 50_000, output_tokens: 5_000 } }),
    ]);
    const list = await page(org.id, 'range=1d&sort=credits', key);
    expect([list.unit, list.currency]).toEqual(['usd', 'USD']);
    expect(list.data.map((c) => c.conversation_id)).toEqual(['conv-big', 'conv-small']);
    expect(cost(list.data[0]!.cost)).toBeGreaterThan(cost(list.data[1]!.cost));
  });
});
