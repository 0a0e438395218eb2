/**
 * The narrow rollups (usage_hourly_dim, usage_daily_dim; migration 0005): how a report's buckets are
 * cut into UTC days and hours, that every dimension of them equals the wide rollup and raw events,
 * that reports read from them agree with raw SQL in zones with odd offsets, and that the migration's
 * backfill rebuilds them from the wide rollup.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import { rollupIntervals } from '../src/domain/ranges.ts';
import {
  UsageBreakdownSchema,
  UsageMonthlySchema,
  UsageSummarySchema,
  UsageTimeseriesSchema,
} from '../src/http/routes/usage.ts';
import { planOf } from '../src/services/usage/source.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

const HOUR = 3_600_000;
const DAY = 86_400_000;

describe('rollupIntervals', () => {
  it('covers the buckets exactly once, with days that never cross a bucket edge', () => {
    const base = Date.UTC(2026, 0, 1);
    fc.assert(
      fc.property(
        fc.integer({ min: -48, max: 48 }),
        fc.array(fc.integer({ min: 0, max: 24 * 9 }), { minLength: 1, maxLength: 12 }),
        (first, steps) => {
          const edges = [new Date(base + first * HOUR)];
          for (const s of steps) edges.push(new Date(edges[edges.length - 1]!.getTime() + s * HOUR));
          const { days, hours } = rollupIntervals(edges);
          const covered = new Map<number, number>();
          for (const i of days) {
            expect(i.start.getTime() % DAY).toBe(0);
            expect(i.end.getTime() % DAY).toBe(0);
          }
          for (const i of [...days, ...hours]) {
            expect(i.end.getTime()).toBeGreaterThan(i.start.getTime());
            for (let t = i.start.getTime(); t < i.end.getTime(); t += HOUR)
              covered.set(t, (covered.get(t) ?? 0) + 1);
          }
          const start = edges[0]!.getTime();
          const end = edges[edges.length - 1]!.getTime();
          expect(covered.size).toBe((end - start) / HOUR);
          for (const [t, n] of covered) {
            expect(n).toBe(1);
            expect(t >= start && t < end).toBe(true);
          }
          // A day interval lies inside one bucket only.
          for (const d of days) {
            for (let t = d.start.getTime(); t < d.end.getTime(); t += DAY) {
              const inner = edges.filter((e) => e.getTime() > t && e.getTime() < t + DAY);
              expect(inner).toEqual([]);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reads a 30-day Berlin range as whole days plus the edge hours', () => {
    const { days, hours } = rollupIntervals([
      new Date('2026-03-01T23:00:00Z'),
      new Date('2026-03-31T14:00:00Z'),
    ]);
    expect(days).toEqual([
      { start: new Date('2026-03-02T00:00:00Z'), end: new Date('2026-03-31T00:00:00Z') },
    ]);
    expect(hours).toEqual([
      { start: new Date('2026-03-01T23:00:00Z'), end: new Date('2026-03-02T00:00:00Z') },
      { start: new Date('2026-03-31T00:00:00Z'), end: new Date('2026-03-31T14:00:00Z') },
    ]);
    expect(() =>
      rollupIntervals([new Date('2026-03-01T23:30:00Z'), new Date('2026-03-02T23:00:00Z')]),
    ).toThrow();
  });

  it('picks the narrow rollup unless a filter is on another dimension', () => {
    expect(planOf(null, {})).toEqual({ table: 'narrow', dimension: 'all', filter: null });
    expect(planOf('member', {})).toEqual({ table: 'narrow', dimension: 'member', filter: null });
    expect(planOf(null, { feature: 'Chat' })).toEqual({
      table: 'narrow',
      dimension: 'feature',
      filter: { dim: 'feature', value: 'Chat' },
    });
    expect(planOf('feature', { feature: 'Chat' }).table).toBe('narrow');
    expect(planOf('member', { feature: 'Chat' }).table).toBe('wide');
    expect(planOf(null, { feature: 'Chat', surface: 'web' }).table).toBe('wide');
    expect(planOf('model', { model: 'gpt-4o' }).table).toBe('wide');
  });
});

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const credits = (s: string) => decimalUnits(s, 6);
const cost = (s: string) => decimalUnits(s, 12);
const sum = <T>(rows: T[], f: (r: T) => bigint) => rows.reduce((a, r) => a + f(r), 0n);
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
const SUMS = `sum(calls)::text AS calls, sum(credits)::text AS credits, sum(cost)::text AS cost,
  sum(provider_cost_usd)::text AS pcost, sum(input_tokens)::text AS input, sum(output_tokens)::text AS output,
  sum(cache_read_tokens)::text AS cr, sum(cache_write_tokens)::text AS cw`;

/** Every row of the narrow tables of one org, as comparable sorted strings. */
async function narrowRows(orgId: string) {
  const hourly = await t.db.query<Record<string, string>>(
    `SELECT dimension, bucket::text AS bucket, key, ${SUMS} FROM usage_hourly_dim WHERE org_id = $1
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [orgId],
  );
  const daily = await t.db.query<Record<string, string>>(
    `SELECT dimension, bucket::text AS bucket, key, ${SUMS} FROM usage_daily_dim WHERE org_id = $1
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [orgId],
  );
  return { hourly, daily };
}

/** The same rows derived from the wide rollup. */
async function fromWide(orgId: string) {
  const per = (bucket: string) =>
    Object.entries(DIM_SQL)
      .map(
        ([dim, key]) =>
          `SELECT '${dim}' AS dimension, ${bucket} AS b, ${key} AS key, calls, credits, cost, provider_cost_usd,
                  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
             FROM usage_hourly WHERE org_id = $1`,
      )
      .join(' UNION ALL ');
  const q = (bucket: string) =>
    t.db.query<Record<string, string>>(
      `SELECT dimension, b::text AS bucket, key, ${SUMS} FROM (${per(bucket)}) x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [orgId],
    );
  return {
    hourly: await q('bucket'),
    daily: await q("date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"),
  };
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
      expect(await narrowRows(org.id)).toEqual(await fromWide(org.id));

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

describe('migration 0005 backfill', () => {
  it('rebuilds the narrow rollups from the wide one', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Australia/Adelaide' });
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
    const before = await narrowRows(org.id);
    const sql = readFileSync(
      new URL('../src/store/migrations/0005_usage_rollups.sql', import.meta.url),
      'utf8',
    );
    const backfill = sql.slice(sql.indexOf('-- Usage recorded before this migration'));
    await t.db.transaction(async (tx) => {
      await tx.exec('DELETE FROM usage_hourly_dim; DELETE FROM usage_daily_dim;');
      await tx.exec(backfill);
    });
    expect(await narrowRows(org.id)).toEqual(before);
    expect(before.daily.length).toBeGreaterThan(0);
  });
});
