/**
 * The narrow rollups (usage_hourly_total, usage_daily_dim; migration 0005): which rollup a report
 * reads, that every row of them equals the wide rollup, that reports read from them agree with raw
 * SQL in zones with odd offsets and across a time-zone change, and that the migration's backfill
 * rebuilds them from the wide rollup; the integration and tool dimensions (migration 0011) against
 * the events and that migration's backfill.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UsageBreakdownSchema,
  UsageMonthlySchema,
  UsageSummarySchema,
  UsageTimeseriesSchema,
} from '../src/http/routes/usage.ts';
import { coverageOf, planOf } from '../src/services/usage/source.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { cost, credits, sum } from './support/units.ts';

const DAY = 86_400_000;

describe('rollup plan', () => {
  it('picks the narrow rollup unless a filter is on another dimension', () => {
    expect(planOf(null, {})).toEqual({ table: 'narrow', dimension: 'all', filter: null });
    expect(planOf('member', {})).toEqual({ table: 'narrow', dimension: 'member', filter: null });
    expect(planOf(null, { feature: 'Chat' })).toEqual({
      table: 'narrow',
      dimension: 'feature',
      filter: { dim: 'feature', value: 'Chat' },
    });
    expect(planOf('feature', { feature: 'Chat' }).table).toBe('narrow');
    expect(planOf('member', { feature: 'Chat' }).table).toBe('pair');
    expect(planOf(null, { feature: 'Chat', surface: 'web' }).table).toBe('wide');
    expect(planOf('model', { model: 'gpt-4o' }).table).toBe('wide');
  });
});

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-3-5-haiku-latest'],
  ['google', 'gemini-2.5-pro'],
] as const;
const FEATURES = ['Chat', 'Generate field', 'Summarize CV'];
const SURFACES = ['web', 'cli', undefined] as const;

const DIM_SQL: Record<string, string> = {
  all: "''",
  member: 'member_id',
  feature: 'feature',
  model: "provider || '/' || model",
  provider: 'provider',
  workspace: 'workspace',
  workspace_group: 'workspace_group',
  surface: 'surface',
  project: 'project',
  api_key: 'api_key_id',
};
const SUMS = `sum(calls), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens), sum(output_tokens),
  sum(cache_read_tokens), sum(cache_write_tokens)`;

/**
 * Every narrow row of one org beside the same sums taken from the wide rollup: the hourly totals per
 * hour, each daily row over the hours [bucket, day_end) of its key. Also checks that the daily rows
 * of a dimension never overlap and hold every event once.
 */
async function narrowVersusWide(orgId: string) {
  const totals = await t.db.query<Record<string, string>>(
    `SELECT n.bucket::text AS bucket, row(n.calls, n.credits, n.cost, n.provider_cost_usd, n.input_tokens,
            n.output_tokens, n.cache_read_tokens, n.cache_write_tokens)::text AS narrow,
            (SELECT row(${SUMS}) FROM usage_hourly h WHERE h.org_id = n.org_id AND h.bucket = n.bucket)::text AS wide
       FROM usage_hourly_total n WHERE n.org_id = $1 ORDER BY 1`,
    [orgId],
  );
  const daily = await t.db.query<Record<string, string>>(
    `SELECT n.dimension, n.bucket::text AS bucket, n.key, row(n.calls, n.credits, n.cost, n.provider_cost_usd,
            n.input_tokens, n.output_tokens, n.cache_read_tokens, n.cache_write_tokens)::text AS narrow,
            (SELECT row(${SUMS}) FROM usage_hourly h
              WHERE h.org_id = n.org_id AND h.bucket >= n.bucket AND h.bucket < n.day_end
                AND CASE n.dimension ${Object.entries(DIM_SQL)
                  .map(([d, k]) => `WHEN '${d}' THEN ${k}`)
                  .join(' ')} END = n.key)::text AS wide
       FROM usage_daily_dim n WHERE n.org_id = $1 AND n.dimension NOT IN ('integration', 'tool') ORDER BY 1, 2, 3`,
    [orgId],
  );
  const [counts] = await t.db.query<{ events: string; days: string; hours: string }>(
    `SELECT (SELECT count(*) FROM events WHERE org_id = $1)::text AS events,
            (SELECT sum(calls) FROM usage_daily_dim WHERE org_id = $1 AND dimension = 'surface')::text AS days,
            (SELECT sum(calls) FROM usage_hourly_total WHERE org_id = $1)::text AS hours`,
    [orgId],
  );
  return { totals, daily, counts: counts! };
}

/** `days` false: after a zone change two days share hours, so a day row holds part of them. */
function expectNarrowEqualsWide(v: Awaited<ReturnType<typeof narrowVersusWide>>, days = true) {
  for (const r of [...v.totals, ...(days ? v.daily : [])]) expect(r.narrow, JSON.stringify(r)).toBe(r.wide);
  expect(v.counts.days).toBe(v.counts.events);
  expect(v.counts.hours).toBe(v.counts.events);
  expect(v.daily.length).toBeGreaterThan(0);
}

async function send(key: string, events: unknown[]) {
  for (let at = 0; at < events.length; at += 500) {
    const r = await t.call('POST', '/v1/events', { key, body: { events: events.slice(at, at + 500) } });
    expect(r.status).toBe(200);
    for (const res of r.body.results) expect(res.status, JSON.stringify(res)).not.toBe('rejected');
  }
}

async function rawGroups(orgId: string, start: string, end: string, keySql: string, extra = '') {
  const rows = await t.db.query<{ key: string; credits: string; cost: string; calls: string }>(
    `SELECT ${keySql} AS key, sum(credits)::text AS credits, sum(cost)::text AS cost, count(*)::text AS calls
       FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 ${extra} GROUP BY 1 ORDER BY 1`,
    [orgId, start, end],
  );
  return rows.map((r) => [r.key, BigInt(r.credits), cost(r.cost), Number(r.calls)]);
}

describe('narrow rollups on random traffic in odd time zones', () => {
  for (const zone of ['Asia/Katmandu', 'Australia/Adelaide', 'America/New_York', 'UTC']) {
    it(`agree with the wide rollup and raw events (${zone})`, async () => {
      const { org, key } = await createOrgWithKey(t, { timezone: zone });
      const rnd = fc.sample(
        fc.record({
          minutes: fc.integer({ min: 1, max: 34 * 24 * 60 }),
          member: fc.constantFrom('m1', 'm2', 'm3', 'm4'),
          feature: fc.constantFrom(...FEATURES),
          model: fc.integer({ min: 0, max: MODELS.length - 1 }),
          surface: fc.constantFrom(...SURFACES),
          workspace: fc.constantFrom('ws-a', 'ws-b', ''),
          input: fc.integer({ min: 0, max: 100_000 }),
          output: fc.integer({ min: 0, max: 20_000 }),
        }),
        { numRuns: 300, seed: zone.length },
      );
      await send(
        key,
        rnd.map((e, i) => ({
          id: `r${i}`,
          member: e.member,
          feature: e.feature,
          provider: MODELS[e.model]![0],
          model: MODELS[e.model]![1],
          occurred_at: ago(e.minutes * 60_000),
          ...(e.surface ? { surface: e.surface } : {}),
          ...(e.workspace ? { workspace: e.workspace, workspace_group: `g-${e.workspace}` } : {}),
          usage: { input_tokens: e.input, output_tokens: e.output },
        })),
      );
      expectNarrowEqualsWide(await narrowVersusWide(org.id));

      const base = `/v1/orgs/${org.id}/usage`;
      for (const range of ['1d', '7d', '30d', 'mtd', 'last_month']) {
        const s = UsageSummarySchema.parse(
          (await t.call('GET', `${base}/summary?range=${range}`, { key })).body,
        );
        const [raw] = await t.db.query<{ credits: string; cost: string; calls: number; members: number }>(
          `SELECT coalesce(sum(credits), 0)::text AS credits, coalesce(sum(cost), 0)::text AS cost,
                  count(*)::int AS calls, count(DISTINCT member_id)::int AS members
             FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
          [org.id, s.range.start, s.range.end],
        );
        expect([range, credits(s.credits), cost(s.cost), s.calls, s.active_members]).toEqual([
          range,
          BigInt(raw!.credits),
          cost(raw!.cost),
          raw!.calls,
          raw!.members,
        ]);
        for (const by of ['member', 'model', 'surface', 'workspace_group']) {
          const b = UsageBreakdownSchema.parse(
            (await t.call('GET', `${base}/breakdown?range=${range}&by=${by}&limit=50`, { key })).body,
          );
          const got = b.data
            .map((r) => [r.key, credits(r.credits), cost(r.cost), r.calls])
            .sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
          expect([range, by, got]).toEqual([
            range,
            by,
            await rawGroups(org.id, s.range.start, s.range.end, DIM_SQL[by]!),
          ]);
        }
        for (const granularity of ['hour', 'day', 'week']) {
          if (granularity === 'hour' && range !== '1d' && range !== '7d') continue;
          const ts = UsageTimeseriesSchema.parse(
            (
              await t.call(
                'GET',
                `${base}/timeseries?range=${range}&granularity=${granularity}&split=feature&split_limit=2`,
                { key },
              )
            ).body,
          );
          for (const b of ts.data) {
            const [raw] = await rawGroups(org.id, b.start, b.end, "''");
            expect([range, granularity, b.start, credits(b.credits), b.calls]).toEqual([
              range,
              granularity,
              b.start,
              raw?.[1] ?? 0n,
              raw?.[3] ?? 0,
            ]);
            expect(sum(b.groups!, (g) => credits(g.credits))).toBe(credits(b.credits));
          }
        }
      }
      // One filter on totals, and a filter on the dimension broken down, stay narrow and exact.
      const s = UsageSummarySchema.parse((await t.call('GET', `${base}/summary?range=30d`, { key })).body);
      const daily = UsageTimeseriesSchema.parse(
        (await t.call('GET', `${base}/timeseries?range=30d&granularity=day&surface=cli`, { key })).body,
      );
      const rawCli = await rawGroups(org.id, s.range.start, s.range.end, "''", "AND surface = 'cli'");
      expect(sum(daily.data, (b) => credits(b.credits))).toBe(rawCli[0]?.[1] ?? 0n);
      const byMember = UsageBreakdownSchema.parse(
        (await t.call('GET', `${base}/breakdown?range=30d&by=member&member=m2`, { key })).body,
      );
      expect(byMember.data.map((r) => r.calls)).toEqual([
        (
          await rawGroups(
            org.id,
            s.range.start,
            s.range.end,
            'member_id',
            `AND member_id = (SELECT id FROM members WHERE org_id = '${org.id}' AND external_id = 'm2')`,
          )
        )[0]![3],
      ]);
      const monthly = UsageMonthlySchema.parse((await t.call('GET', `${base}/monthly`, { key })).body);
      const [all] = await rawGroups(org.id, '2000-01-01', '2100-01-01', "''");
      const thisYear = credits(monthly.total.credits) + credits(monthly.previous_year_total.credits);
      expect(thisYear).toBe(all![1]);
    });
  }
});

/** The narrow rows of one org as text, for before/after comparisons. */
async function narrowSnapshot(orgId: string) {
  return {
    totals: await t.db.query(
      'SELECT t::text AS r FROM usage_hourly_total t WHERE org_id = $1 ORDER BY bucket',
      [orgId],
    ),
    daily: await t.db.query(
      'SELECT d::text AS r FROM usage_daily_dim d WHERE org_id = $1 ORDER BY dimension, bucket, day_end, key',
      [orgId],
    ),
  };
}

describe('coverage of report buckets by stored days', () => {
  it('uses a day clipped by the range only when its clipped hours hold no usage, never overlapping days', async () => {
    const org = 'org_coverage_test';
    const z = (iso: string) => new Date(iso);
    const day = (s: string, e: string) =>
      t.db.query(
        `INSERT INTO usage_daily_dim (org_id, dimension, bucket, day_end, key, calls, credits, cost, provider_cost_usd,
           input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
         VALUES ($1, 'all', $2, $3, '', 1, 1, 0, 0, 0, 0, 0, 0)`,
        [org, s, e],
      );
    const hour = (h: string) =>
      t.db.query(
        `INSERT INTO usage_hourly_total (org_id, bucket, calls, credits, cost, provider_cost_usd, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens) VALUES ($1, $2, 1, 1, 0, 0, 0, 0, 0, 0)`,
        [org, h],
      );
    await day('2026-03-01T23:00:00Z', '2026-03-02T23:00:00Z');
    await day('2026-03-02T23:00:00Z', '2026-03-03T23:00:00Z');
    await hour('2026-03-02T05:00:00Z');
    await hour('2026-03-03T05:00:00Z');
    const edges = [z('2026-03-01T23:00:00Z'), z('2026-03-03T08:00:00Z')];
    let c = await coverageOf(t.db, org, edges);
    // Today (the second day) ends after the range, but holds nothing later: read as a day.
    expect(c.days.map((d) => [d.from.toISOString(), d.to.toISOString()])).toEqual([
      ['2026-03-01T23:00:00.000Z', '2026-03-02T23:00:00.000Z'],
      ['2026-03-02T23:00:00.000Z', '2026-03-03T08:00:00.000Z'],
    ]);
    expect(c.hours).toEqual([]);
    // An event dated after the range end (clocks may run 5 minutes ahead): today is read hourly.
    await hour('2026-03-03T08:00:00Z');
    c = await coverageOf(t.db, org, edges);
    expect(c.days).toHaveLength(1);
    expect(c.hours).toEqual([{ start: z('2026-03-02T23:00:00Z'), end: z('2026-03-03T08:00:00Z') }]);
    // Two report buckets cutting the first day: it is read hourly.
    c = await coverageOf(t.db, org, [edges[0]!, z('2026-03-02T12:00:00Z'), edges[1]!]);
    expect(c.days).toEqual([]);
    expect(c.hours).toEqual([{ start: edges[0], end: edges[1] }]);
    // A day of another zone overlapping the first: neither is used.
    await day('2026-03-02T08:00:00Z', '2026-03-03T08:00:00Z');
    c = await coverageOf(t.db, org, [z('2026-03-01T23:00:00Z'), z('2026-03-05T00:00:00Z')]);
    expect(c.days).toEqual([]);
    await t.db.query('DELETE FROM usage_daily_dim WHERE org_id = $1', [org]);
    await t.db.query('DELETE FROM usage_hourly_total WHERE org_id = $1', [org]);
  });
});

describe('a time-zone change', () => {
  it('keeps every report exact while days of two zones overlap', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Europe/Berlin' });
    const batch = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: `${tag}${i}`,
        member: `m${i % 3}`,
        feature: FEATURES[i % 3],
        provider: MODELS[i % 4]![0],
        model: MODELS[i % 4]![1],
        occurred_at: ago(((i * 7919) % (20 * 24 * 60)) * 60_000 + 60_000),
        usage: { input_tokens: 100 + i, output_tokens: 10 + i },
      }));
    await send(key, batch('berlin', 120));
    const patched = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      body: { timezone: 'America/Los_Angeles' },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    await send(key, batch('la', 120));
    const overlaps = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM usage_daily_dim a JOIN usage_daily_dim b
          ON a.org_id = b.org_id AND a.dimension = 'all' AND b.dimension = 'all'
         AND a.bucket < b.bucket AND b.bucket < a.day_end
       WHERE a.org_id = $1`,
      [org.id],
    );
    expect(overlaps[0]!.n).toBeGreaterThan(0);
    expectNarrowEqualsWide(await narrowVersusWide(org.id), false);
    const base = `/v1/orgs/${org.id}/usage`;
    for (const range of ['7d', '30d']) {
      const s = UsageSummarySchema.parse(
        (await t.call('GET', `${base}/summary?range=${range}`, { key })).body,
      );
      const raw = await rawGroups(org.id, s.range.start, s.range.end, "''");
      expect([credits(s.credits), s.calls]).toEqual([raw[0]![1], raw[0]![3]]);
      const b = UsageBreakdownSchema.parse(
        (await t.call('GET', `${base}/breakdown?range=${range}&by=feature&limit=10`, { key })).body,
      );
      expect(
        b.data
          .map((r) => [r.key, credits(r.credits), cost(r.cost), r.calls])
          .sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
      ).toEqual(await rawGroups(org.id, s.range.start, s.range.end, 'feature'));
      const ts = UsageTimeseriesSchema.parse(
        (await t.call('GET', `${base}/timeseries?range=${range}&granularity=day&split=member`, { key })).body,
      );
      for (const d of ts.data) {
        const [r] = await rawGroups(org.id, d.start, d.end, "''");
        expect([d.start, credits(d.credits)]).toEqual([d.start, r?.[1] ?? 0n]);
      }
    }
  });
});

describe('migration 0005 backfill', () => {
  it('rebuilds the narrow rollups from the wide one', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Katmandu' });
    await send(
      key,
      Array.from({ length: 60 }, (_, i) => ({
        id: `b${i}`,
        member: `m${i % 5}`,
        feature: FEATURES[i % 3],
        provider: MODELS[i % 4]![0],
        model: MODELS[i % 4]![1],
        occurred_at: ago((i * 7919 * 60_000) % (34 * DAY)),
        ...(i % 2 ? { project: `p${i % 3}` } : {}),
        usage: { input_tokens: 100 + i, output_tokens: 10 + i },
      })),
    );
    const before = await narrowSnapshot(org.id);
    const sql = readFileSync(
      new URL('../src/store/migrations/0005_usage_rollups.sql', import.meta.url),
      'utf8',
    );
    const backfill = sql.slice(sql.indexOf('-- Usage recorded before this migration'));
    await t.db.transaction(async (tx) => {
      await tx.exec('DELETE FROM usage_hourly_total; DELETE FROM usage_daily_dim;');
      await tx.exec(backfill);
    });
    expect(await narrowSnapshot(org.id)).toEqual(before);
    expect(before.daily.length).toBeGreaterThan(0);
  });
});

describe('integration and tool dimensions', () => {
  it('count only events with an integration surface or a metadata tool, on the days of the other rows', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Katmandu' });
    const long = `  ${'\u{1F527}'.repeat(150)}${'t'.repeat(100)}`;
    const surfaces = ['web', 'cli', 'api', 'mobile', undefined, 'slack', 'vscode'] as const;
    const metadata = [
      { tool: ' web_search\n' },
      { tool: 'code_exec' },
      { tool: long },
      { tool: 5 },
      { tool: ' \t ' },
      { other: 'x' },
      undefined,
    ] as const;
    // The tool key each entry of `metadata` should give (null: no row).
    const expectedTool = [
      'web_search',
      'code_exec',
      Array.from(long.trim()).slice(0, 200).join(''),
      null,
      null,
      null,
      null,
    ];
    const events = Array.from({ length: 140 }, (_, i) => ({
      id: `it${i}`,
      member: `m${i % 4}`,
      feature: FEATURES[i % 3],
      provider: MODELS[i % 4]![0],
      model: MODELS[i % 4]![1],
      occurred_at: ago(((i * 7919) % (20 * 24 * 60)) * 60_000 + 60_000),
      ...(surfaces[i % 7] ? { surface: surfaces[i % 7] } : {}),
      ...(metadata[Math.floor(i / 7) % 7] ? { metadata: metadata[Math.floor(i / 7) % 7] } : {}),
      usage: { input_tokens: 100 + i, output_tokens: 10 + i },
    }));
    await send(key, events);

    const stored = new Map(
      (
        await t.db.query<{ id: string; credits: string }>(
          'SELECT id, credits::text AS credits FROM events WHERE org_id = $1',
          [org.id],
        )
      ).map((r) => [r.id, BigInt(r.credits)]),
    );
    const expected = new Map<string, { calls: number; credits: bigint }>();
    const add = (dimension: string, k: string, id: string) => {
      const e = expected.get(`${dimension}/${k}`) ?? { calls: 0, credits: 0n };
      expected.set(`${dimension}/${k}`, { calls: e.calls + 1, credits: e.credits + stored.get(id)! });
    };
    events.forEach((e, i) => {
      if (e.surface === 'slack' || e.surface === 'vscode') add('integration', e.surface, e.id);
      const tool = expectedTool[Math.floor(i / 7) % 7];
      if (tool) add('tool', tool, e.id);
    });
    const rows = await t.db.query<{ dimension: string; key: string; calls: number; credits: string }>(
      `SELECT dimension, key, sum(calls)::int AS calls, sum(credits)::text AS credits FROM usage_daily_dim
        WHERE org_id = $1 AND dimension IN ('integration', 'tool') GROUP BY 1, 2`,
      [org.id],
    );
    expect(
      new Map(rows.map((r) => [`${r.dimension}/${r.key}`, { calls: r.calls, credits: BigInt(r.credits) }])),
    ).toEqual(expected);
    expect(expected.size).toBe(5);
    // Every row lies on a day the org total has too.
    const [stray] = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM usage_daily_dim d
        WHERE d.org_id = $1 AND d.dimension IN ('integration', 'tool') AND NOT EXISTS (
          SELECT 1 FROM usage_daily_dim a WHERE a.org_id = d.org_id AND a.dimension = 'all'
             AND a.bucket = d.bucket AND a.day_end = d.day_end)`,
      [org.id],
    );
    expect(stray!.n).toBe(0);

    // Migration 0011 rebuilds the same rows from the stored events.
    const snapshot = () =>
      t.db.query(
        `SELECT d::text AS r FROM usage_daily_dim d WHERE org_id = $1 AND dimension IN ('integration', 'tool')
          ORDER BY dimension, bucket, day_end, key`,
        [org.id],
      );
    const before = await snapshot();
    const backfill = readFileSync(
      new URL('../src/store/migrations/0011_rollup_integration_tool.sql', import.meta.url),
      'utf8',
    );
    await t.db.transaction(async (tx) => {
      await tx.exec("DELETE FROM usage_daily_dim WHERE dimension IN ('integration', 'tool')");
      await tx.exec(backfill);
    });
    expect(await snapshot()).toEqual(before);
  });
});

describe('summary distinct counts at the edges of a range', () => {
  it('count a member, feature and model seen only in hours no stored day covers, never one just outside', async () => {
    // Katmandu days run 18:00-18:00 UTC on whole hours: a range from 10:00 to 15:00 UTC cuts a day
    // at each end, whose hours are read from the hourly rows.
    const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Katmandu' });
    const from = Date.parse(`${new Date(Date.now() - 4 * DAY).toISOString().slice(0, 10)}T10:00:00Z`);
    const to = from + 2 * DAY + 5 * 3_600_000;
    const event = (id: string, member: string, feature: string, model: number, at: number) => ({
      id,
      member,
      feature,
      provider: MODELS[model]![0],
      model: MODELS[model]![1],
      occurred_at: new Date(at).toISOString(),
      usage: { input_tokens: 1000, output_tokens: 100 },
    });
    await send(key, [
      ...Array.from({ length: 6 }, (_, i) => event(`mid${i}`, 'm1', 'Chat', 0, from + DAY + i * 3_600_000)),
      event('inside-start', 'early', 'Summarize CV', 1, from + 20 * 60_000),
      event('before-start', 'before', 'Generate field', 3, from - 20 * 60_000),
      event('inside-end', 'late', 'Chat', 2, to - 20 * 60_000),
      event('after-end', 'after', 'Translate', 3, to + 20 * 60_000),
    ]);
    const range = `range=custom&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`;
    const s = UsageSummarySchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/summary?${range}`, { key })).body,
    );
    const [raw] = await t.db.query<{ members: number; features: number; models: number; calls: number }>(
      `SELECT count(DISTINCT member_id)::int AS members, count(DISTINCT feature)::int AS features,
              count(DISTINCT (provider, model))::int AS models, count(*)::int AS calls
         FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
      [org.id, s.range.start, s.range.end],
    );
    expect(raw).toEqual({ members: 3, features: 2, models: 3, calls: 8 });
    expect([s.active_members, s.features, s.model_tiers, s.calls]).toEqual([3, 2, 3, 8]);
  });
});
