/**
 * Rollups built by the build_usage_rollups job (migration 0018): hours by dimension
 * (usage_hourly_dim) and days by pairs of dimensions (usage_daily_pair). Reports read them for busy
 * closed periods and agree with raw events to the last unit; a late event sends its period back to
 * the rows ingest keeps until the job rebuilds it.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageBreakdownSchema, UsageTimeseriesSchema } from '../src/http/routes/usage.ts';
import { UsageDaySchema } from '../src/http/routes/usageInsights.ts';
import { buildHourlyDims } from '../src/services/maintenance/buildHourlyDims.ts';
import { buildUsagePairs } from '../src/services/maintenance/buildUsagePairs.ts';
import { ANALYZE_AFTER_ROWS, buildWithin } from '../src/services/maintenance/jobRollups.ts';
import { builtHoursOf, coverageOf, planOf } from '../src/services/usage/source.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { cost, credits } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

const MODELS = [
  ['openai', 'gpt-4o'],
  ['anthropic', 'claude-3-5-haiku-latest'],
  ['google', 'gemini-2.5-pro'],
] as const;
const TOOLS = ['web_search', 'code', undefined] as const;
const SURFACES = ['web', 'api', 'slack', undefined] as const;

/** Keys over raw events, written here independently of the service's own key SQL. */
const RAW_KEY: Record<string, string> = {
  member: 'member_id',
  feature: 'feature',
  model: "provider || '/' || model",
  provider: 'provider',
  surface: 'surface',
  workspace: 'workspace',
  integration: "CASE WHEN surface IN ('', 'web', 'cli', 'api', 'mobile') THEN '' ELSE surface END",
  tool: "coalesce(metadata ->> 'tool', '')",
};

async function send(key: string, events: unknown[]) {
  for (let at = 0; at < events.length; at += 500) {
    const r = await t.call('POST', '/v1/events', { key, body: { events: events.slice(at, at + 500) } });
    expect(r.status).toBe(200);
    for (const res of r.body.results) expect(res.status, JSON.stringify(res)).not.toBe('rejected');
  }
}

async function rawGroups(
  orgId: string,
  start: string,
  end: string,
  by: string,
  filter?: string,
  value?: string,
) {
  const rows = await t.db.query<{ key: string; credits: string; cost: string; calls: string }>(
    `SELECT ${RAW_KEY[by]} AS key, sum(credits)::text AS credits, sum(cost)::text AS cost, count(*)::text AS calls
       FROM events
      WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3
        AND ${filter ? `${RAW_KEY[filter]} = $4` : '$4::text IS NULL'}
      GROUP BY 1 ORDER BY 1`,
    [orgId, start, end, value ?? null],
  );
  return rows.map((r) => [r.key, BigInt(r.credits), cost(r.cost), Number(r.calls)]);
}

/** The breakdown by `by` under `filter`=`value`, beside the same groups of raw events. */
async function breakdownVersusRaw(key: string, orgId: string, by: string, filter: string, value: string) {
  const path = `/v1/orgs/${orgId}/usage/breakdown?range=30d&by=${by}&${filter}=${encodeURIComponent(value)}&limit=100`;
  const b = UsageBreakdownSchema.parse((await t.call('GET', path, { key })).body);
  const got = b.data
    .map((r) => [r.key, credits(r.credits), cost(r.cost), r.calls])
    .sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
  return { got, raw: await rawGroups(orgId, b.range.start, b.range.end, by, filter, value), range: b.range };
}

describe('pair plan', () => {
  it('reads pairs for one filter on another dimension than the grouped one, never for a model filter', () => {
    expect(planOf('member', { tool: 'code' })).toEqual({
      table: 'pair',
      dimension: 'member',
      filter: { dim: 'tool', value: 'code' },
    });
    expect(planOf('member', { model: 'gpt-4o' }).table).toBe('wide');
    expect(planOf('member', { tool: 'code', feature: 'Chat' }).table).toBe('wide');
    expect(planOf(null, { tool: 'code' }).table).toBe('narrow');
  });
});

describe('pair rollups on random traffic', () => {
  it('agree with raw events for every filter and grouping, before and after a late event', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Katmandu' });
    const rnd = fc.sample(
      fc.record({
        minutes: fc.integer({ min: 90, max: 29 * 24 * 60 }),
        member: fc.constantFrom('m1', 'm2', 'm3'),
        feature: fc.constantFrom('Chat', 'Summarize'),
        model: fc.integer({ min: 0, max: MODELS.length - 1 }),
        surface: fc.constantFrom(...SURFACES),
        tool: fc.constantFrom(...TOOLS),
        workspace: fc.constantFrom('ws-a', 'ws-b', undefined),
        input: fc.integer({ min: 0, max: 100_000 }),
        output: fc.integer({ min: 0, max: 20_000 }),
      }),
      { numRuns: 400, seed: 18 },
    );
    await send(
      key,
      rnd.map((e, i) => ({
        id: `p${i}`,
        member: e.member,
        feature: e.feature,
        provider: MODELS[e.model]![0],
        model: MODELS[e.model]![1],
        occurred_at: ago(e.minutes * 60_000),
        ...(e.surface ? { surface: e.surface } : {}),
        ...(e.workspace ? { workspace: e.workspace } : {}),
        ...(e.tool ? { metadata: { tool: e.tool } } : {}),
        usage: { input_tokens: e.input, output_tokens: e.output },
      })),
    );

    // The daily detail page of a few days, from raw events before the job itemizes them.
    const dates = [3, 10, 20].map((d) =>
      new Date(Date.now() - d * DAY + 5.75 * HOUR).toISOString().slice(0, 10),
    );
    const dayItems = async () =>
      Promise.all(
        dates.map(async (date) =>
          UsageDaySchema.parse((await t.call('GET', `/v1/orgs/${org.id}/usage/days/${date}`, { key })).body),
        ),
      );
    const rawItems = await dayItems();
    for (const d of rawItems) expect(d.data.length).toBeGreaterThan(3);

    const built = await buildUsagePairs(t.db, { minCalls: 1 });
    expect(built.done).toBe(true);
    expect(built.days).toBeGreaterThan(20);
    expect(await buildUsagePairs(t.db, { minCalls: 1 })).toEqual({ days: 0, rows: 0, done: true });

    const member = (
      await t.db.query<{ id: string }>('SELECT id FROM members WHERE org_id = $1 AND external_id = $2', [
        org.id,
        'm2',
      ])
    )[0]!.id;
    const cases: [by: string, filter: string, value: string][] = [
      ['member', 'tool', 'code'],
      ['model', 'tool', 'web_search'],
      ['tool', 'feature', 'Chat'],
      ['integration', 'member', member],
      ['feature', 'integration', 'slack'],
      ['surface', 'provider', 'openai'],
      ['workspace', 'surface', 'api'],
    ];
    const check = async () => {
      for (const [by, filter, value] of cases) {
        const { got, raw } = await breakdownVersusRaw(key, org.id, by, filter, value);
        expect(raw.length, `${by} under ${filter}`).toBeGreaterThan(0);
        expect(got, `${by} under ${filter}=${value}`).toEqual(raw);
      }
    };
    await check();
    // The same lines and totals from the job's item rows, for days it built.
    for (const d of rawItems) {
      const day = (await coverageOf(t.db, org.id, [new Date(d.start), new Date(d.end)])).days;
      expect(day.map((x) => x.paired)).toEqual([true]);
    }
    expect(await dayItems()).toEqual(rawItems);

    // The report really read pair rows: the days of its range are paired.
    const range = (await breakdownVersusRaw(key, org.id, 'member', 'tool', 'code')).range;
    const edges = [new Date(range.start), new Date(range.end)];
    const paired = (await coverageOf(t.db, org.id, edges)).days.filter((d) => d.paired);
    expect(paired.length).toBeGreaterThan(20);

    // A late event for a paired day: that day is read hourly (still exact) until rebuilt.
    const late = ago(5 * DAY + 2 * HOUR);
    await send(key, [
      {
        id: 'late-1',
        member: 'm2',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        surface: 'slack',
        occurred_at: late,
        metadata: { tool: 'code' },
        usage: { input_tokens: 1234, output_tokens: 56 },
      },
    ]);
    const after = (await coverageOf(t.db, org.id, edges)).days;
    const lateDay = after.find(
      (d) => d.start.getTime() <= Date.parse(late) && Date.parse(late) < d.end.getTime(),
    );
    expect(lateDay?.paired).toBe(false);
    expect(after.filter((d) => d.paired).length).toBe(paired.length - 1);
    await check();

    expect(await buildUsagePairs(t.db, { minCalls: 1 })).toMatchObject({ days: 1, done: true });
    expect((await coverageOf(t.db, org.id, edges)).days.filter((d) => d.paired).length).toBe(paired.length);
    await check();

    // A time series split by member under the tool filter adds up per bucket too.
    const ts = UsageTimeseriesSchema.parse(
      (
        await t.call(
          'GET',
          `/v1/orgs/${org.id}/usage/timeseries?range=30d&granularity=day&split=member&tool=code`,
          {
            key,
          },
        )
      ).body,
    );
    for (const b of ts.data) {
      const raw = await rawGroups(org.id, b.start, b.end, 'member', 'tool', 'code');
      const calls = raw.reduce((a, r) => a + Number(r[3]), 0);
      expect([b.start, b.calls]).toEqual([b.start, calls]);
      expect((b.groups ?? []).reduce((a, g) => a + g.calls, 0)).toBe(b.calls);
    }
  });

  it('leaves quiet days and days still open to the hourly rows', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'UTC' });
    await send(
      key,
      Array.from({ length: 30 }, (_, i) => ({
        id: `q${i}`,
        member: 'm1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: ago([10 * 60_000, 2 * DAY, 3 * DAY][i % 3]!),
        metadata: { tool: 'code' },
        usage: { input_tokens: 100, output_tokens: 10 },
      })),
    );
    await buildUsagePairs(t.db, { minCalls: 11 });
    const days = await t.db.query<{ bucket: Date; calls: string }>(
      'SELECT bucket, calls FROM usage_pair_days WHERE org_id = $1 ORDER BY bucket',
      [org.id],
    );
    // 10 calls a day: below 11 nothing is built; today (not closed) never is.
    expect(days).toEqual([]);
    await buildUsagePairs(t.db, { minCalls: 10 });
    const built = await t.db.query<{ calls: string }>('SELECT calls FROM usage_pair_days WHERE org_id = $1', [
      org.id,
    ]);
    expect(built.map((r) => r.calls)).toEqual(['10', '10']);
    const { got, raw } = await breakdownVersusRaw(key, org.id, 'member', 'tool', 'code');
    expect(got).toEqual(raw);
  });
});

describe('hourly rollups by dimension', () => {
  it('agree with raw events in hourly charts and cut days, before and after a late event', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'America/New_York' });
    const rnd = fc.sample(
      fc.record({
        minutes: fc.integer({ min: 1, max: 6 * 24 * 60 }),
        member: fc.constantFrom('m1', 'm2', 'm3', 'm4'),
        feature: fc.constantFrom('Chat', 'Summarize'),
        model: fc.integer({ min: 0, max: MODELS.length - 1 }),
        surface: fc.constantFrom(...SURFACES),
        tool: fc.constantFrom(...TOOLS),
        input: fc.integer({ min: 0, max: 100_000 }),
        output: fc.integer({ min: 0, max: 20_000 }),
      }),
      { numRuns: 500, seed: 19 },
    );
    await send(
      key,
      rnd.map((e, i) => ({
        id: `h${i}`,
        member: e.member,
        feature: e.feature,
        provider: MODELS[e.model]![0],
        model: MODELS[e.model]![1],
        occurred_at: ago(e.minutes * 60_000),
        ...(e.surface ? { surface: e.surface } : {}),
        ...(e.tool ? { metadata: { tool: e.tool } } : {}),
        usage: { input_tokens: e.input, output_tokens: e.output },
      })),
    );
    const built = await buildHourlyDims(t.db, { minCalls: 1 });
    expect(built.done).toBe(true);
    expect(built.hours).toBeGreaterThan(50);
    expect(await buildHourlyDims(t.db, { minCalls: 1 })).toEqual({ hours: 0, rows: 0, done: true });

    const base = `/v1/orgs/${org.id}/usage`;
    const check = async () => {
      for (const split of ['model', 'tool', 'integration']) {
        const ts = UsageTimeseriesSchema.parse(
          (
            await t.call(
              'GET',
              `${base}/timeseries?range=1d&granularity=hour&split=${split}&split_limit=10`,
              { key },
            )
          ).body,
        );
        for (const b of ts.data) {
          const raw = await rawGroups(org.id, b.start, b.end, split);
          const got = (b.groups ?? [])
            .filter((g) => g.calls > 0)
            .map((g) => [g.key, credits(g.credits), g.calls])
            .sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
          expect([split, b.start, got]).toEqual([split, b.start, raw.map((r) => [r[0], r[1], r[3]])]);
        }
      }
      // 7 days cut at both ends (a rolling range): whole days from daily rows, the rest hourly.
      for (const [by, filter, value] of [
        ['member', undefined, undefined],
        ['tool', 'tool', 'code'],
        ['surface', undefined, undefined],
      ] as const) {
        const q = filter ? `&${filter}=${value}` : '';
        const b = UsageBreakdownSchema.parse(
          (await t.call('GET', `${base}/breakdown?range=7d&by=${by}${q}&limit=100`, { key })).body,
        );
        const got = b.data
          .map((r) => [r.key, credits(r.credits), cost(r.cost), r.calls])
          .sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
        expect([by, got]).toEqual([
          by,
          await rawGroups(org.id, b.range.start, b.range.end, by, filter, value),
        ]);
      }
    };
    await check();

    const day = [new Date(Date.now() - DAY), new Date(Date.now() - 2 * HOUR)].map(
      (d) => new Date(Math.floor(d.getTime() / HOUR) * HOUR),
    ) as [Date, Date];
    const before = await builtHoursOf(t.db, org.id, [{ start: day[0], end: day[1] }]);
    expect(before.built.length).toBeGreaterThan(10);

    // A late event in a built hour: that hour is read from the wide rows until rebuilt.
    const lateHour = before.built[3]!;
    await send(key, [
      {
        id: 'late-h',
        member: 'm1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        surface: 'slack',
        occurred_at: new Date(lateHour.getTime() + 30 * 60_000).toISOString(),
        metadata: { tool: 'code' },
        usage: { input_tokens: 999, output_tokens: 9 },
      },
    ]);
    const after = await builtHoursOf(t.db, org.id, [{ start: day[0], end: day[1] }]);
    expect(after.built.map((d) => d.getTime())).not.toContain(lateHour.getTime());
    expect(after.built.length).toBe(before.built.length - 1);
    expect(after.rest.some((r) => r.start.getTime() <= lateHour.getTime() && lateHour < r.end)).toBe(true);
    await check();
    expect(await buildHourlyDims(t.db, { minCalls: 1 })).toMatchObject({ hours: 1, done: true });
    expect((await builtHoursOf(t.db, org.id, [{ start: day[0], end: day[1] }])).built.length).toBe(
      before.built.length,
    );
    await check();
  });
});

describe('statistics after a large build', () => {
  it('analyzes the tables a run wrote once it wrote ANALYZE_AFTER_ROWS rows, and not before', async () => {
    await t.db.exec('CREATE TABLE analyze_probe (x int)');
    // reltuples is -1 until a table is first analyzed (or vacuumed).
    const reltuples = async () =>
      Number(
        (
          await t.db.query<{ n: number }>(
            "SELECT reltuples AS n FROM pg_class WHERE relname = 'analyze_probe'",
          )
        )[0]!.n,
      );
    const run = (rows: number) => buildWithin(t.db, [1], 10_000, ['analyze_probe'], async () => rows);
    expect(await run(ANALYZE_AFTER_ROWS - 1)).toEqual({
      periods: 1,
      rows: ANALYZE_AFTER_ROWS - 1,
      done: true,
    });
    expect(await reltuples()).toBe(-1);
    await run(ANALYZE_AFTER_ROWS);
    expect(await reltuples()).toBe(0);
  });
});
