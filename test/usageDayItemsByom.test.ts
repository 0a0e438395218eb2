/**
 * The daily detail page of a BYOM org: each event costs its provider cost rounded once to
 * micro-dollars, so its lines are that rounded cost split over the event's components, and add up
 * to the day's total exactly, read from raw events or from the job's item rows alike.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocate, decimalUnits, Ratio } from '../src/domain/money.ts';
import { UsageDaySchema } from '../src/http/routes/usageInsights.ts';
import { buildUsagePairs } from '../src/services/maintenance/buildUsagePairs.ts';
import { coverageOf } from '../src/services/usage/source.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const DAY = 86_400_000;
const cost = (s: string) => decimalUnits(s, 12);
/** The date two days ago (UTC): a closed day the job may itemize. */
const closedDay = () => new Date(Date.now() - 2 * DAY).toISOString().slice(0, 10);
const byomOrg = () => createOrgWithKey(t, { currency: 'USD', timezone: 'UTC', billing_mode: 'byom' });
const page = async (orgId: string, key: string, date: string) =>
  UsageDaySchema.parse((await t.call('GET', `/v1/orgs/${orgId}/usage/days/${date}`, { key })).body);

/** Itemizes the day with the job, then checks it is read from the job's rows. */
async function build(orgId: string, day: { start: string; end: string }) {
  expect((await buildUsagePairs(t.db, { minCalls: 1 })).done).toBe(true);
  const days = (await coverageOf(t.db, orgId, [new Date(day.start), new Date(day.end)])).days;
  expect(days.map((d) => d.paired)).toEqual([true]);
}

describe('day items of a BYOM org', () => {
  it('split each event’s rounded cost over its components, raw or built', async () => {
    const { org, key } = await byomOrg();
    const date = closedDay();
    const at = `${date}T12:00:00.000Z`;
    const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o', occurred_at: at };
    // gpt-4o lists USD 2.50 per million input tokens and 10 per million output tokens: 5 input
    // tokens cost 0.0000125, rounded (half to even) to 0.000012; 5 input and 3 output tokens cost
    // 0.0000425, rounded to 0.000042 and split 12 + 30 (0.0000125 and 0.00003 by largest remainder).
    const events = [
      ...[0, 1, 2].map((i) => ({ ...call, id: `in-${i}`, usage: { input_tokens: 5 } })),
      { ...call, id: 'io', usage: { input_tokens: 5, output_tokens: 3 } },
    ];
    const sent = await t.call('POST', '/v1/events', { key, body: { events } });
    expect(sent.body.results.map((r: { cost: string }) => r.cost)).toEqual([
      '0.000012',
      '0.000012',
      '0.000012',
      '0.000042',
    ]);

    const raw = await page(org.id, key, date);
    expect(raw.total.cost).toBe('0.000078');
    expect(Object.fromEntries(raw.data.map((l) => [l.component, l.cost]))).toEqual({
      input: '0.000048',
      output: '0.00003',
    });
    expect(raw.data.reduce((a, l) => a + cost(l.cost), 0n)).toBe(cost(raw.total.cost));
    // A BYOM org is charged no credits: neither the day nor any line shows some.
    expect([raw.total.credits, ...raw.data.map((l) => l.credits)]).toEqual(['0', '0', '0']);

    // The job's item rows give the same page.
    await build(org.id, raw);
    expect(await page(org.id, key, date)).toEqual(raw);
  });

  it('match money.ts allocate per event on random traffic', async () => {
    const { org, key } = await byomOrg();
    const date = closedDay();
    const models = [
      ['openai', 'gpt-4o'],
      ['anthropic', 'claude-3-5-haiku-latest'],
      ['google', 'gemini-2.5-pro'],
    ] as const;
    const events = fc
      .sample(
        fc.record({
          model: fc.integer({ min: 0, max: models.length - 1 }),
          input: fc.integer({ min: 0, max: 40 }),
          output: fc.integer({ min: 0, max: 40 }),
          cached: fc.integer({ min: 0, max: 40 }),
        }),
        { numRuns: 60, seed: 7 },
      )
      .map((e, i) => ({
        id: `r${i}`,
        member: 'u1',
        feature: i % 3 ? 'Chat' : 'Search',
        provider: models[e.model]![0],
        model: models[e.model]![1],
        occurred_at: `${date}T${String(i % 24).padStart(2, '0')}:30:00.000Z`,
        usage: { input_tokens: e.input + e.cached, output_tokens: e.output, cache_read_tokens: e.cached },
      }));
    const sent = await t.call('POST', '/v1/events', { key, body: { events } });
    for (const r of sent.body.results) expect(r.status, JSON.stringify(r)).toBe('accepted');

    // Each event's micro-dollars split over its components by provider cost, summed per line.
    const stored = await t.db.query<{
      feature: string;
      provider: string;
      model: string;
      cost: string;
      components: { component: string; provider_cost_usd: string }[];
    }>('SELECT feature, provider, model, cost::text, components FROM events WHERE org_id = $1', [org.id]);
    const expected = new Map<string, bigint>();
    for (const e of stored) {
      const parts = allocate(
        cost(e.cost) / 1_000_000n,
        e.components.map((c) => Ratio.parse(c.provider_cost_usd)),
      );
      e.components.forEach((c, i) => {
        const line = `${e.feature} ${e.provider}/${e.model} ${c.component}`;
        expected.set(line, (expected.get(line) ?? 0n) + parts[i]! * 1_000_000n);
      });
    }
    const lines = (d: Awaited<ReturnType<typeof page>>) =>
      new Map(d.data.map((l) => [`${l.category} ${l.provider}/${l.model} ${l.component}`, cost(l.cost)]));
    const raw = await page(org.id, key, date);
    expect(lines(raw)).toEqual(expected);
    expect(raw.data.reduce((a, l) => a + cost(l.cost), 0n)).toBe(cost(raw.total.cost));
    await build(org.id, raw);
    expect(await page(org.id, key, date)).toEqual(raw);
  });
});

describe('day items of a BYOK org', () => {
  it('count the quantities only: the org paid its provider itself, so no line costs anything', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byok',
    });
    const date = closedDay();
    const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };
    const events = [
      {
        ...call,
        id: 'k',
        occurred_at: `${date}T12:00:00.000Z`,
        usage: { input_tokens: 5_000, output_tokens: 300 },
      },
    ];
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).body.results[0].status).toBe(
      'accepted',
    );
    const day = await page(org.id, key, date);
    expect(day.total).toMatchObject({ credits: '0', cost: '0' });
    expect(day.data.map((l) => [l.component, l.quantity, l.credits, l.cost])).toEqual([
      ['input', '5000', '0', '0'],
      ['output', '300', '0', '0'],
    ]);
  });
});
