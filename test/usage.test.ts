import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import { surfaceLabel } from '../src/domain/usageEvent.ts';
import {
  UsageBreakdownSchema,
  UsageDailySchema,
  UsageEventsPageSchema,
  UsageMonthlySchema,
  UsageSummarySchema,
  UsageTimeseriesSchema,
} from '../src/http/routes/usage.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { everyPage } from './support/paging.ts';
import { cost, credits, sum } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-3-5-haiku-latest'],
  ['google', 'gemini-2.5-pro'],
] as const;
const FEATURES = ['Chat', 'Generate field', 'Summarize CV'];
const SURFACES = ['web', 'cli', undefined];
const WORKSPACES = [
  ['ws-a', 'team-1'],
  ['ws-b', 'team-1'],
  ['ws-c', 'team-2'],
  [undefined, undefined],
] as const;

function event(i: number, at: string, member: string) {
  const [provider, model] = MODELS[i % MODELS.length]!;
  const [workspace, workspace_group] = WORKSPACES[(i * 7) % WORKSPACES.length]!;
  const surface = SURFACES[(i * 5) % SURFACES.length];
  return {
    id: `e${i}`,
    member,
    feature: FEATURES[Math.floor(i / 2) % FEATURES.length]!,
    provider,
    model,
    occurred_at: at,
    ...(surface ? { surface } : {}),
    ...(workspace ? { workspace, workspace_group } : {}),
    ...(i % 4 === 0 ? { project: `p${i % 3}` } : {}),
    usage: {
      input_tokens: 1000 + i * 37,
      output_tokens: 200 + i * 11,
      ...(i % 3 === 0 ? { cache_read_tokens: 300 } : {}),
    },
  };
}

async function send(key: string, events: unknown[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).not.toBe('rejected');
  return r.body.results as { credits: string; cost: string }[];
}

/** Every page of a paginated usage endpoint. */
const allPages = (path: string, key?: string): Promise<any[]> => everyPage(t, path, key, (body: any) => body);

/** The same figures summed naively over raw events. */
async function rawTotals(orgId: string, start: string, end: string, extra = '') {
  const [row] = await t.db.query<{ credits: string; cost: string; calls: string }>(
    `SELECT coalesce(sum(credits), 0)::text AS credits, coalesce(sum(cost), 0)::text AS cost, count(*)::text AS calls
       FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 ${extra}`,
    [orgId, start, end],
  );
  return { credits: BigInt(row!.credits), cost: cost(row!.cost), calls: Number(row!.calls) };
}

describe('usage analytics: one org with several members, features, models and days', () => {
  let org: { id: string };
  let key: string;
  let carolId: string;
  let sentCredits = 0n;

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t));
    for (const [external_id, name] of [
      ['alice', 'Alice Smith'],
      ['bob', 'Bob Jones'],
      ['carol', 'Carol Davis'],
    ]) {
      const m = await t.call('POST', `/v1/orgs/${org.id}/members`, {
        body: { external_id, name, email: `${external_id}@example.com` },
      });
      expect(m.status).toBe(201);
      if (external_id === 'carol') carolId = m.body.id;
    }
    const who = ['alice', 'bob', 'carol', 'dave'];
    // 56 events over the last 27 days (dave is only known from his events).
    const events = Array.from({ length: 56 }, (_, i) =>
      event(i, ago((i % 28) * DAY + ((i * 53) % 600) * 60_000 + 60_000), who[i % who.length]!),
    );
    const results = await send(key, events);
    sentCredits = sum(results, (r) => credits(r.credits));
    expect((await t.call('DELETE', `/v1/orgs/${org.id}/members/${carolId}`)).status).toBe(200);
  });

  it('summary == breakdown rows == time-series buckets == events pages == raw SQL, to the last unit', async () => {
    const base = `/v1/orgs/${org.id}/usage`;
    const summary = await t.call('GET', `${base}/summary?range=30d`, { key });
    expect(summary.status).toBe(200);
    const s = UsageSummarySchema.parse(summary.body);
    const raw = await rawTotals(org.id, s.range.start, s.range.end);
    expect(credits(s.credits)).toBe(sentCredits);
    expect({ credits: credits(s.credits), cost: cost(s.cost), calls: s.calls }).toEqual(raw);
    expect(s).toMatchObject({
      active_members: 4,
      features: 3,
      model_tiers: 4,
      unit: 'credits',
      currency: 'EUR',
    });
    expect(s.provider_cost_usd).toBeNull(); // operator view only
    expect(s.tokens.total).toBe(s.tokens.input + s.tokens.output);

    for (const by of [
      'feature',
      'member',
      'model',
      'provider',
      'workspace',
      'workspace_group',
      'surface',
      'project',
    ]) {
      const pages = (await allPages(`${base}/breakdown?range=30d&by=${by}&limit=2`, key)).map((p) =>
        UsageBreakdownSchema.parse(p),
      );
      const rows = pages.flatMap((p) => p.data);
      expect([by, rows.map((r) => r.key)]).toEqual([by, [...new Set(rows.map((r) => r.key))]]);
      expect(rows.length).toBe(pages[0]!.groups);
      expect(sum(rows, (r) => credits(r.credits))).toBe(raw.credits);
      expect(sum(rows, (r) => cost(r.cost))).toBe(raw.cost);
      expect(rows.reduce((a, r) => a + r.calls, 0)).toBe(raw.calls);
      expect(sum(rows, (r) => decimalUnits(r.share, 4))).toBe(10_000n);
      expect(pages[0]!.total).toMatchObject({ credits: s.credits, cost: s.cost, calls: s.calls });
      // Ranked by credits, largest first.
      const ranked = rows.map((r) => credits(r.credits));
      expect([...ranked].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(ranked);
    }

    const members = UsageBreakdownSchema.parse(
      (await t.call('GET', `${base}/breakdown?range=30d&by=member&limit=10`, { key })).body,
    );
    const labels = members.data.map((r) => r.label).sort();
    expect(labels).toEqual(['Alice Smith', 'Bob Jones', 'Unknown user', 'dave']);
    expect(members.data.find((r) => r.label === 'Unknown user')!.email).toBeNull();
    // The product's own surfaces by the names the pages show them by.
    const labelsBy = async (by: string) =>
      Object.fromEntries(
        UsageBreakdownSchema.parse(
          (await t.call('GET', `${base}/breakdown?range=30d&by=${by}&limit=10`, { key })).body,
        ).data.map((r) => [r.key, r.label]),
      );
    expect(await labelsBy('surface')).toEqual({ web: 'Web', cli: 'CLI', '': 'None' });
    // Any other surface is named as written, even one an object inherits a property of.
    expect(['constructor', '__proto__', 'toString', 'slack'].map(surfaceLabel)).toEqual([
      'constructor',
      '__proto__',
      'toString',
      'slack',
    ]);

    for (const query of ['', '&granularity=day', '&granularity=hour', '&split=surface&cumulative=false']) {
      const ts = UsageTimeseriesSchema.parse(
        (await t.call('GET', `${base}/timeseries?range=30d${query}`, { key })).body,
      );
      expect(sum(ts.data, (b) => credits(b.credits))).toBe(raw.credits);
      expect(sum(ts.data, (b) => cost(b.cost))).toBe(raw.cost);
      expect(ts.data.reduce((a, b) => a + b.calls, 0)).toBe(raw.calls);
      expect(ts.data[0]!.start).toBe(s.range.start);
      expect(ts.data.at(-1)!.end).toBe(s.range.end);
      for (const b of ts.data) {
        if (b.groups) expect(sum(b.groups, (g) => credits(g.credits))).toBe(credits(b.credits));
      }
    }
    const weekly = UsageTimeseriesSchema.parse(
      (await t.call('GET', `${base}/timeseries?range=30d`, { key })).body,
    );
    expect(weekly.granularity).toBe('week');
    const cumulative = UsageTimeseriesSchema.parse(
      (
        await t.call('GET', `${base}/timeseries?range=30d&granularity=day&cumulative=true&split=member`, {
          key,
        })
      ).body,
    );
    expect(cumulative.data.at(-1)!.credits).toBe(s.credits);
    expect(cumulative.series.map((x) => x.label)).toContain('Unknown user');

    const pages = (await allPages(`${base}/events?range=30d&limit=7`, key)).map((p) =>
      UsageEventsPageSchema.parse(p),
    );
    const events = pages.flatMap((p) => p.data);
    expect(events.length).toBe(raw.calls);
    // Each event's surface as the pages name it, beside its key.
    expect(new Set(events.map((e) => `${e.surface}=${e.surface_label}`))).toEqual(
      new Set(['web=Web', 'cli=CLI', 'null=null']),
    );
    expect(new Set(events.map((e) => e.id)).size).toBe(raw.calls);
    expect(sum(events, (e) => credits(e.credits))).toBe(raw.credits);
    expect(sum(events, (e) => cost(e.cost))).toBe(raw.cost);
    const times = events.map((e) => e.occurred_at);
    expect([...times].sort().reverse()).toEqual(times);
    const carols = events.filter((e) => e.member.id === carolId);
    expect(carols.length).toBeGreaterThan(0);
    for (const e of carols)
      expect(e.member).toMatchObject({ label: 'Unknown user', name: null, email: null });
    const alices = events.filter((e) => e.member.label === 'Alice Smith');
    expect(alices[0]!.member.email).toBe('alice@example.com');
  });

  it('applies every filter the same way to summary, breakdown, series and events', async () => {
    const base = `/v1/orgs/${org.id}/usage`;
    const cases: [string, string][] = [
      [
        'member=alice',
        `AND member_id = (SELECT id FROM members WHERE org_id = '${org.id}' AND external_id = 'alice')`,
      ],
      [`member=${carolId}`, `AND member_id = '${carolId}'`],
      ['feature=Chat', `AND feature = 'Chat'`],
      ['model=gpt-4o-mini', `AND model = 'gpt-4o-mini'`],
      ['provider=anthropic', `AND provider = 'anthropic'`],
      ['workspace=ws-a', `AND workspace = 'ws-a'`],
      ['workspace_group=team-1', `AND workspace_group = 'team-1'`],
      ['surface=cli', `AND surface = 'cli'`],
      ['project=p0', `AND project = 'p0'`],
    ];
    for (const [q, sql] of cases) {
      const s = UsageSummarySchema.parse(
        (await t.call('GET', `${base}/summary?range=30d&${q}`, { key })).body,
      );
      const raw = await rawTotals(org.id, s.range.start, s.range.end, sql);
      expect(raw.calls, q).toBeGreaterThan(0);
      expect({ credits: credits(s.credits), cost: cost(s.cost), calls: s.calls }, q).toEqual(raw);
      const b = UsageBreakdownSchema.parse(
        (await t.call('GET', `${base}/breakdown?range=30d&by=feature&limit=50&${q}`, { key })).body,
      );
      expect(
        sum(b.data, (r) => credits(r.credits)),
        q,
      ).toBe(raw.credits);
      const e = (await allPages(`${base}/events?range=30d&limit=50&${q}`, key)).flatMap((p) => p.data);
      expect(e.length, q).toBe(raw.calls);
    }
  });

  it('puts a late event in the bucket of when it happened, and daily/monthly agree', async () => {
    const base = `/v1/orgs/${org.id}/usage`;
    const before = UsageTimeseriesSchema.parse(
      (await t.call('GET', `${base}/timeseries?range=30d&granularity=day`, { key })).body,
    );
    const at = ago(20 * DAY + 3_600_000);
    const [late] = await send(key, [{ ...event(999, at, 'alice'), id: 'late-1' }]);
    const after = UsageTimeseriesSchema.parse(
      (await t.call('GET', `${base}/timeseries?range=30d&granularity=day`, { key })).body,
    );
    const changed = after.data.filter((b, i) => b.credits !== before.data[i]!.credits);
    expect(changed).toHaveLength(1);
    expect(changed[0]!.start <= at && at < changed[0]!.end).toBe(true);
    const i = after.data.indexOf(changed[0]!);
    expect(credits(after.data[i]!.credits) - credits(before.data[i]!.credits)).toBe(credits(late!.credits));

    const daily = UsageDailySchema.parse((await t.call('GET', `${base}/daily`, { key })).body);
    const mtd = UsageSummarySchema.parse((await t.call('GET', `${base}/summary?range=mtd`, { key })).body);
    expect(daily.total.credits).toBe(mtd.credits);
    expect(sum(daily.data, (d) => credits(d.credits))).toBe(credits(mtd.credits));
    const monthly = UsageMonthlySchema.parse((await t.call('GET', `${base}/monthly`, { key })).body);
    expect(monthly.data.find((m) => m.month === daily.month)!.credits).toBe(daily.total.credits);
    expect(sum(monthly.data, (m) => credits(m.credits))).toBe(credits(monthly.total.credits));
  });

  it('shows provider cost to the operator only', async () => {
    const s = await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=30d`);
    expect(UsageSummarySchema.parse(s.body).provider_cost_usd).toMatch(/^\d+(\.\d+)?$/);
  });
});

describe('usage analytics: errors and security', () => {
  it('hides another org (404) and names the bad parameter', async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    for (const path of ['summary', 'timeseries', 'breakdown?by=feature', 'events', 'daily', 'monthly']) {
      const r = await t.call('GET', `/v1/orgs/${a.org.id}/usage/${path}`, { key: b.key });
      expect(r.status, path).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    const base = `/v1/orgs/${a.org.id}/usage`;
    const bad: [string, number, string][] = [
      ['summary?range=2d', 400, 'range'],
      ['summary?range=custom&to=2026-01-01', 400, 'from'],
      ['summary?range=custom&from=2026-01-02&to=2026-01-01', 400, 'to'],
      ['summary?range=7d&from=2026-01-01', 400, 'from'],
      ['summary?range=custom&from=soon&to=2026-01-01', 400, 'from'],
      ['summary?colour=red', 422, 'colour'],
      ['summary?feature=', 400, 'feature'],
      ['breakdown?by=colour', 400, 'by'],
      ['breakdown?by=feature&cursor=nope', 400, 'cursor'],
      ['events?cursor=WyJ4IiwxXQ', 400, 'cursor'],
      ['events?limit=0', 400, 'limit'],
      ['timeseries?split=colour', 400, 'split'],
      ['timeseries?range=custom&from=2025-06-01&to=2026-03-01&granularity=hour', 400, 'granularity'],
      ['daily?month=2026-13', 400, 'month'],
      // Years whose arithmetic Postgres or JS cannot carry: a 400, never a 500.
      ['summary?range=custom&from=9999-01-01&to=9999-12-31', 400, 'from'],
      ['timeseries?range=custom&from=2026-01-01&to=9999-12-31T00:00:00Z', 400, 'to'],
      ['summary?range=custom&from=0001-01-01&to=2026-01-01', 400, 'from'],
      ['daily?month=9999-12', 400, 'month'],
      ['days/9999-12-31', 400, 'date'],
      ['events?cursor=WyIwMDAwLTAxLTAxVDAwOjAwOjAwLjAwMFoiLDFd', 400, 'cursor'],
    ];
    for (const [path, status, param] of bad) {
      const r = await t.call('GET', `${base}/${path}`, { key: a.key });
      expect([r.status, r.body.param], path).toEqual([status, param]);
    }
    // A viewer may read usage; a missing key may not.
    const viewer = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      body: { name: 'v', role: 'viewer' },
    });
    expect((await t.call('GET', `${base}/summary`, { key: viewer.body.key })).status).toBe(200);
    expect((await t.call('GET', `${base}/summary`, { key: '' })).status).toBe(401);
  });

  it('answers an empty period with zeros, shares of 0 and the end of the log', async () => {
    const { org, key } = await createOrgWithKey(t);
    const base = `/v1/orgs/${org.id}/usage`;
    const s = UsageSummarySchema.parse((await t.call('GET', `${base}/summary?range=7d`, { key })).body);
    expect(s).toMatchObject({ credits: '0', cost: '0', calls: 0, trend: { label: 'flat' } });
    const e = UsageEventsPageSchema.parse((await t.call('GET', `${base}/events?range=7d`, { key })).body);
    expect(e).toMatchObject({ data: [], has_more: false, next_cursor: null });
    const ts = UsageTimeseriesSchema.parse(
      (await t.call('GET', `${base}/timeseries?range=7d`, { key })).body,
    );
    expect(ts.data).toHaveLength(7);
  });
});

describe('usage analytics: property', () => {
  it('summary and breakdowns equal a plain SQL computation over raw events', async () => {
    const arbEvent = fc.record({
      minutesAgo: fc.integer({ min: 1, max: 29 * 24 * 60 }),
      member: fc.constantFrom('m1', 'm2', 'm3'),
      feature: fc.constantFrom(...FEATURES),
      model: fc.integer({ min: 0, max: MODELS.length - 1 }),
      input: fc.integer({ min: 0, max: 200_000 }),
      output: fc.integer({ min: 0, max: 50_000 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbEvent, { minLength: 0, maxLength: 25 }),
        fc.constantFrom('7d', '30d', 'mtd'),
        async (evs, range) => {
          const { org, key } = await createOrgWithKey(t, { timezone: 'America/New_York' });
          if (evs.length > 0) {
            await send(
              key,
              evs.map((e, i) => ({
                id: `p${i}`,
                member: e.member,
                feature: e.feature,
                provider: MODELS[e.model]![0],
                model: MODELS[e.model]![1],
                occurred_at: ago(e.minutesAgo * 60_000),
                usage: { input_tokens: e.input, output_tokens: e.output },
              })),
            );
          }
          const base = `/v1/orgs/${org.id}/usage`;
          const s = UsageSummarySchema.parse(
            (await t.call('GET', `${base}/summary?range=${range}`, { key })).body,
          );
          const raw = await rawTotals(org.id, s.range.start, s.range.end);
          expect({ credits: credits(s.credits), cost: cost(s.cost), calls: s.calls }).toEqual(raw);
          for (const by of ['feature', 'member'] as const) {
            const b = UsageBreakdownSchema.parse(
              (await t.call('GET', `${base}/breakdown?range=${range}&by=${by}&limit=10`, { key })).body,
            );
            const col = by === 'member' ? 'member_id' : 'feature';
            const groups = await t.db.query<{ key: string; credits: string; cost: string }>(
              `SELECT ${col} AS key, sum(credits)::text AS credits, sum(cost)::text AS cost FROM events
              WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1 ORDER BY 1`,
              [org.id, s.range.start, s.range.end],
            );
            expect(
              b.data
                .map((r) => [r.key, credits(r.credits), cost(r.cost)])
                .sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
            ).toEqual(groups.map((g) => [g.key, BigInt(g.credits), cost(g.cost)]));
            if (raw.calls > 0) expect(sum(b.data, (r) => decimalUnits(r.share, 4))).toBe(10_000n);
          }
        },
      ),
      { numRuns: 8 },
    );
  });
});
