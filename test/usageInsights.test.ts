/**
 * Usage insights: one day's itemized entries, conversations, patterns, the forecast and anomalies.
 * Every answer is parsed with its route schema; figures are checked against raw events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dateIn } from '../src/domain/calendar.ts';
import { errorRateSpike, forecastDaily, horizon, median, robustScore } from '../src/domain/forecast.ts';
import { UsageSummarySchema } from '../src/http/routes/usage.ts';
import {
  ConversationUsageSchema,
  UsageAnomaliesSchema,
  UsageDaySchema,
  UsageForecastSchema,
  UsagePatternsSchema,
} from '../src/http/routes/usageInsights.ts';
import { detectAnomalies } from '../src/services/usage/detectAnomalies.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { cost, credits, sum } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

async function send(key: string, events: unknown[]) {
  for (let at = 0; at < events.length; at += 500) {
    const r = await t.call('POST', '/v1/events', { key, body: { events: events.slice(at, at + 500) } });
    expect(r.status).toBe(200);
    for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
  }
}

describe('forecast and anomaly statistics', () => {
  it('recovers a level, a trend and a weekly pattern', () => {
    const flat = forecastDaily(
      Array.from({ length: 28 }, () => 100),
      Array.from({ length: 28 }, (_, i) => i % 7),
    );
    expect(flat.likely(1)).toBeCloseTo(100, 6);
    expect(flat.sigma).toBeCloseTo(0, 6);
    const rising = forecastDaily(
      Array.from({ length: 28 }, (_, i) => 10 * i),
      Array.from({ length: 28 }, (_, i) => i % 7),
    );
    expect(rising.slope).toBeGreaterThan(5);
    expect(rising.likely(2)).toBeGreaterThan(rising.likely(1));
    // Weekends (weekday 0 and 6) never spend: the forecast keeps them at zero.
    const weekdays = Array.from({ length: 56 }, (_, i) => i % 7);
    const office = forecastDaily(
      weekdays.map((w) => (w === 0 || w === 6 ? 0 : 50)),
      weekdays,
    );
    const nextWeekday = (k: number) => (weekdays[55]! + k) % 7;
    for (let k = 1; k <= 14; k++) {
      const w = nextWeekday(k);
      if (w === 0 || w === 6) expect(office.likely(k)).toBe(0);
      else expect(office.likely(k)).toBeCloseTo(50, 6);
    }
    const h = horizon(rising, [
      { ahead: 1, weight: 0.5 },
      { ahead: 2, weight: 1 },
    ]);
    expect(h.conservative).toBeLessThanOrEqual(h.likely);
    expect(h.likely).toBeLessThanOrEqual(h.aggressive);
  });

  it('scores a spike against median and MAD, with a floor for flat baselines', () => {
    const base = [10, 12, 11, 9, 10, 13, 10, 11, 12, 10];
    expect(robustScore(11, base, 1).severity).toBeNull();
    expect(robustScore(100, base, 1).severity).toBe('high');
    const flat = Array.from({ length: 28 }, () => 10);
    // MAD 0: the floor (10 % of the median) keeps the score finite.
    const r = robustScore(13, flat, 0);
    expect(Number.isFinite(r.score)).toBe(true);
    expect(r.score).toBeCloseTo(3, 6);
    expect(robustScore(0, [], 1)).toMatchObject({ median: 0, severity: null });
  });

  it('scores an error rate spike only on enough failures against enough known days', () => {
    const quiet = Array.from({ length: 28 }, (_, i) => ({ calls: 20, failed: i % 3 === 0 ? 1 : 0 }));
    // 10 of 20 failed against rates of 0 and 5 %: median 0, spread floored at 2 points.
    expect(errorRateSpike({ calls: 20, failed: 10 }, quiet)).toMatchObject({
      rate: 50,
      median: 0,
      score: 25,
      severity: 'high',
    });
    // Fewer than 5 failed calls is never a spike, whatever the share.
    expect(errorRateSpike({ calls: 4, failed: 4 }, quiet)).toBeNull();
    expect(errorRateSpike({ calls: 20, failed: 1 }, quiet)).toBeNull();
    // Days with no calls or purged failures (null) are no baseline: 6 known days are too few.
    const sparse = [...Array.from({ length: 22 }, () => null), ...quiet.slice(0, 6)];
    expect(errorRateSpike({ calls: 20, failed: 10 }, sparse)).toBeNull();
    const idle = [...Array.from({ length: 22 }, () => ({ calls: 0, failed: 0 })), ...quiet.slice(0, 6)];
    expect(errorRateSpike({ calls: 20, failed: 10 }, idle)).toBeNull();
    expect(errorRateSpike({ calls: 20, failed: 10 }, [...sparse.slice(1), quiet[0]!])).not.toBeNull();
    // A usual error rate is no spike: 10 % every day.
    const usual = Array.from({ length: 28 }, () => ({ calls: 100, failed: 10 }));
    expect(errorRateSpike({ calls: 100, failed: 11 }, usual)).toBeNull();
  });

  it('takes the median of odd and even lists, with repeats, and leaves its input as it was', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed;
    };
    for (let n = 1; n <= 40; n++) {
      const values = Array.from({ length: n }, () => (next() % 50) - 10);
      const before = [...values];
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(n / 2);
      expect(median(values)).toBe(n % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2);
      expect(values).toEqual(before);
    }
  });
});

describe('usage insights over HTTP', () => {
  let org: { id: string; timezone: string };
  let key: string;
  const today = () => dateIn(org.timezone, new Date());

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t, {
      timezone: 'America/New_York',
      plan_allowance_credits: '5000',
    }));
    const events: Record<string, unknown>[] = [];
    // 29 days of steady traffic by two members, then a spike today by a third on a new feature.
    for (let d = 1; d <= 29; d++) {
      for (let i = 0; i < 4; i++) {
        events.push({
          id: `s${d}-${i}`,
          member: i % 2 ? 'alice' : 'bob',
          feature: i % 2 ? 'Chat' : 'Summarize',
          provider: 'openai',
          model: i % 3 ? 'gpt-4o-mini' : 'gpt-4o',
          occurred_at: ago(d * DAY + i * 3_600_000),
          conversation_id: `conv-${d}`,
          message_id: `msg-${d}-${Math.floor(i / 2)}`,
          usage: {
            input_tokens: 1000 + 10 * i,
            output_tokens: 200,
            ...(i === 3 ? { cache_read_tokens: 400 } : {}),
          },
        });
      }
    }
    for (let i = 0; i < 40; i++) {
      events.push({
        id: `spike-${i}`,
        member: 'mallory',
        feature: 'Deep research',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: ago(60_000 + i * 1000),
        conversation_id: 'conv-spike',
        message_id: `spike-msg-${Math.floor(i / 4)}`,
        usage: { input_tokens: 50_000, output_tokens: 8_000 },
        metadata: {
          input_tokens: { message: 1_000, context: 29_000, files: 20_000 },
          files:
            i % 4 === 0
              ? [{ id: 'file-1', name: 'Annual_Report.pdf', size_bytes: 2_300_000, extracted_tokens: 12_500 }]
              : [],
        },
      });
    }
    await send(key, events);
  });

  it('itemizes one day: lines add up to the day, unit prices are cost per unit', async () => {
    const date = dateIn(org.timezone, new Date(Date.now() - 3 * DAY));
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/days/${date}`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const day = UsageDaySchema.parse(r.body);
    const [raw] = await t.db.query<{ credits: string; cost: string; calls: number }>(
      `SELECT sum(credits)::text AS credits, sum(cost)::text AS cost, count(*)::int AS calls FROM events
        WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
      [org.id, day.start, day.end],
    );
    expect(raw!.calls).toBeGreaterThan(0);
    expect(day.total.calls).toBe(raw!.calls);
    expect(credits(day.total.credits)).toBe(BigInt(raw!.credits));
    expect(sum(day.data, (l) => credits(l.credits))).toBe(BigInt(raw!.credits));
    expect(sum(day.data, (l) => cost(l.cost))).toBe(cost(raw!.cost));
    expect(new Set(day.data.map((l) => l.component))).toEqual(new Set(['input', 'output', 'cache_read']));
    for (const l of day.data) {
      // Named as the price list names the operation, so searching the list for it finds its price.
      const listed = await t.call('GET', `/v1/prices?q=${encodeURIComponent(l.operation)}&limit=100`, {
        key,
      });
      expect(
        listed.body.data.map((p: { id: string; operation: string; unit_label: string }) => [
          p.id,
          p.operation,
          p.unit_label,
        ]),
      ).toContainEqual([`${l.provider}/${l.model}/${l.component}`, l.operation, `per ${l.billing_unit}`]);
      const exact = (Number(l.cost) / Number(l.quantity)) * (l.billing_unit === '1 000 tokens' ? 1000 : 1);
      expect(Number(l.unit_price)).toBeCloseTo(exact, 7);
      expect(l.provider_cost_usd).toBeNull();
    }
    const chat = UsageDaySchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/days/${date}?feature=Chat`, { key })).body,
    );
    expect(chat.data.every((l) => l.category === 'Chat')).toBe(true);
    expect(chat.total.calls).toBeLessThan(day.total.calls);
    // The operator sees provider cost per line.
    const op = UsageDaySchema.parse((await t.call('GET', `/v1/orgs/${org.id}/usage/days/${date}`)).body);
    expect(op.data[0]!.provider_cost_usd).toMatch(/^\d/);
    const empty = UsageDaySchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/days/2020-02-29`, { key })).body,
    );
    expect(empty).toMatchObject({ data: [], total: { credits: '0', calls: 0 } });
  });

  it('answers a conversation with totals, messages, input split and files', async () => {
    const r = await t.call('GET', `/v1/orgs/${org.id}/conversations/conv-spike`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const c = ConversationUsageSchema.parse(r.body);
    const [raw] = await t.db.query<{ credits: string; calls: number; input: string }>(
      `SELECT sum(credits)::text AS credits, count(*)::int AS calls, sum(input_tokens)::text AS input
         FROM events WHERE org_id = $1 AND conversation_id = 'conv-spike'`,
      [org.id],
    );
    expect(c).toMatchObject({ calls: 40, messages: 10, members: 1 });
    expect(credits(c.credits)).toBe(BigInt(raw!.credits));
    expect(c.tokens.input).toBe(Number(raw!.input));
    expect(c.input_breakdown).toEqual({ message: 40_000, context: 1_160_000, files: 800_000 });
    expect(c.duration_seconds).toBe(39);
    expect(c.files).toEqual([
      {
        id: 'file-1',
        name: 'Annual_Report.pdf',
        size_bytes: 2_300_000,
        extracted_tokens: 12_500,
        messages: 10,
      },
    ]);
    expect(c.data).toHaveLength(10);
    expect(sum(c.data, (m) => credits(m.credits))).toBe(BigInt(raw!.credits));
    // Oldest first, keyset pages.
    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const page = ConversationUsageSchema.parse(
        (
          await t.call(
            'GET',
            `/v1/orgs/${org.id}/conversations/conv-spike?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
            {
              key,
            },
          )
        ).body,
      );
      pages.push(...page.data.map((m) => m.message_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(pages).toEqual(c.data.map((m) => m.message_id));
    expect(c.data.map((m) => m.started_at)).toEqual([...c.data.map((m) => m.started_at)].sort());
    const missing = await t.call('GET', `/v1/orgs/${org.id}/conversations/nope`, { key });
    expect([missing.status, missing.body.code]).toEqual([404, 'not_found']);
  });

  it('finds the busiest hours and weekdays, adding up to the summary', async () => {
    const p = UsagePatternsSchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/patterns?range=30d`, { key })).body,
    );
    const s = UsageSummarySchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=30d`, { key })).body,
    );
    expect(p.hours).toHaveLength(24);
    expect(p.weekdays).toHaveLength(7);
    expect(sum(p.hours, (h) => credits(h.credits))).toBe(credits(s.credits));
    expect(sum(p.weekdays, (w) => credits(w.credits))).toBe(credits(s.credits));
    expect(sum(p.weeks, (w) => credits(w.credits))).toBe(credits(s.credits));
    expect(p.total.credits).toBe(s.credits);
    const top = p.hours.reduce((a, h) => (credits(h.credits) > credits(a.credits) ? h : a));
    expect(p.busiest_hour).toBe(top.hour);
    expect(p.weekdays.reduce((a, w) => a + w.days, 0)).toBeGreaterThanOrEqual(30);
    // Today's spike makes this week larger than the last.
    expect(p.week_over_week.trend.direction).toBe('up');
    const filtered = UsagePatternsSchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/patterns?range=30d&member=alice`, { key })).body,
    );
    expect(credits(filtered.total.credits)).toBeLessThan(credits(s.credits));
    expect(sum(filtered.hours, (h) => credits(h.credits))).toBe(credits(filtered.total.credits));
  });

  it('forecasts the next 30 days and the month end, ordered, with the method and a run-out', async () => {
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/forecast`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const f = UsageForecastSchema.parse(r.body);
    expect(f.method).toContain('weekly seasonality');
    expect(f.history_days).toBeGreaterThanOrEqual(28);
    expect(f.today.date).toBe(today());
    const n = f.next_30_days;
    expect(credits(n.conservative.amount)).toBeLessThanOrEqual(credits(n.likely.amount));
    expect(credits(n.likely.amount)).toBeLessThanOrEqual(credits(n.aggressive.amount));
    expect(credits(n.likely.amount)).toBeGreaterThan(0n);
    // Credits and their currency equivalent at the org's credit value (0.01), exactly.
    expect(cost(n.likely.cost)).toBe(credits(n.likely.amount) * 10_000n);
    const m = f.end_of_month;
    expect(credits(m.conservative.amount)).toBeGreaterThanOrEqual(credits(m.month_to_date.amount));
    const mtd = UsageSummarySchema.parse(
      (await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=mtd`, { key })).body,
    );
    expect(m.month_to_date.amount).toBe(mtd.credits);
    expect(f.run_out).not.toBeNull();
    const ro = f.run_out!;
    for (const d of [ro.earliest_date, ro.likely_date, ro.latest_date])
      if (d) expect(d >= today()).toBe(true);
    if (ro.earliest_date && ro.likely_date) expect(ro.earliest_date <= ro.likely_date).toBe(true);
    // An org without usage forecasts zero.
    const quiet = await createOrgWithKey(t);
    const q = UsageForecastSchema.parse(
      (await t.call('GET', `/v1/orgs/${quiet.org.id}/usage/forecast`, { key: quiet.key })).body,
    );
    expect(q).toMatchObject({ history_days: 0, next_30_days: { likely: { amount: '0' } } });
  });

  it('flags the spike of the org, the member and the feature, and nothing on steady days', async () => {
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/anomalies?days=7`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const a = UsageAnomaliesSchema.parse(r.body);
    const todays = a.data.filter((x) => x.date === today());
    expect(new Set(todays.map((x) => `${x.scope}:${x.label}`))).toEqual(
      new Set(['org:Acme', 'member:mallory', 'feature:Deep research']),
    );
    for (const x of todays) {
      expect(x.severity).toBe('high');
      expect(credits(x.value)).toBeGreaterThan(credits(x.median));
    }
    expect(a.data.filter((x) => x.date !== today())).toEqual([]);
  });

  it('fires anomaly.detected once per spike, however often the job runs', async () => {
    const jobCtx = {
      db: t.db,
      config: t.config,
      prices: t.prices,
      principal: { kind: 'operator' as const, id: 'job' },
      requestId: 'job',
    };
    const first = await detectAnomalies(jobCtx);
    const again = await detectAnomalies(jobCtx);
    expect(again.sent).toBe(0);
    const messages = await t.db.query<{ payload: { data: { scope: string; label: string; date: string } } }>(
      `SELECT payload FROM webhook_messages WHERE org_id = $1 AND type = 'anomaly.detected' ORDER BY seq`,
      [org.id],
    );
    expect(messages.length).toBeGreaterThanOrEqual(3);
    expect(first.sent).toBeGreaterThanOrEqual(messages.length);
    expect(new Set(messages.map((m) => `${m.payload.data.scope}:${m.payload.data.label}`))).toEqual(
      new Set(['org:Acme', 'member:mallory', 'feature:Deep research']),
    );
    expect(messages.every((m) => m.payload.data.date === today())).toBe(true);
  });
});

describe('error rate spikes', () => {
  let org: { id: string; timezone: string };
  let key: string;
  const today = () => dateIn(org.timezone, new Date());
  const jobCtx = () => ({
    db: t.db,
    config: t.config,
    prices: t.prices,
    principal: { kind: 'operator' as const, id: 'job' },
    requestId: 'job',
  });
  const call = (id: string, feature: string, at: string, error?: string) => ({
    id,
    member: 'alice',
    feature,
    provider: 'openai',
    model: 'gpt-4o-mini',
    occurred_at: at,
    usage: { input_tokens: 100, output_tokens: 20 },
    ...(error ? { metadata: { error } } : {}),
  });

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t, { timezone: 'UTC', plan_allowance_credits: '5000' }));
    const events: Record<string, unknown>[] = [];
    // 30 steady days: Search fails once every third day, Chat never; today Search fails 10 of 20
    // times and Chat once in 10.
    for (let d = 1; d <= 30; d++) {
      for (let i = 0; i < 10; i++) {
        const at = ago(d * DAY + i * 60_000);
        events.push(call(`s${d}-${i}`, 'Search', at, d % 3 === 0 && i === 0 ? 'timeout' : undefined));
        events.push(call(`c${d}-${i}`, 'Chat', at));
      }
    }
    for (let i = 0; i < 20; i++)
      events.push(call(`s-today-${i}`, 'Search', ago(60_000 + i * 1000), i % 2 ? 'rate_limited' : undefined));
    for (let i = 0; i < 10; i++)
      events.push(call(`c-today-${i}`, 'Chat', ago(60_000 + i * 1000), i === 0 ? 'timeout' : undefined));
    await send(key, events);
  });

  const errorSpikes = async () => {
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/anomalies?days=7`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return UsageAnomaliesSchema.parse(r.body).data.filter((x) => x.metric === 'error_rate');
  };

  it('flags the failing feature and the org, with exact rates and counts, and not the healthy one', async () => {
    const spikes = await errorSpikes();
    expect(
      spikes.map((x) => [x.date, x.scope, x.label, x.value, x.failed_calls, x.calls, x.severity]),
    ).toEqual([
      [today(), 'feature', 'Search', '50', 10, 20, 'high'],
      [today(), 'org', 'Acme', '36.7', 11, 30, 'high'],
    ]);
    for (const x of spikes) expect([x.median, x.mad]).toEqual(['0', '0']);
    // The counts are the raw events' own.
    const [raw] = await t.db.query<{ failed: number }>(
      `SELECT count(*)::int AS failed FROM events WHERE org_id = $1 AND id LIKE '%today%' AND metadata ? 'error'`,
      [org.id],
    );
    expect(raw!.failed).toBe(11);
  });

  it('leaves days with purged raw events out of the baseline', async () => {
    await t.db.query(
      `INSERT INTO raw_event_purges (org_id, purged_before) VALUES ($1, now() - interval '3 days')`,
      [org.id],
    );
    try {
      expect(await errorSpikes()).toEqual([]);
    } finally {
      await t.db.query('DELETE FROM raw_event_purges WHERE org_id = $1', [org.id]);
    }
    expect(await errorSpikes()).toHaveLength(2);
  });

  it('fires anomaly.detected once per error rate spike, apart from spend spikes of the same scope', async () => {
    await detectAnomalies(jobCtx());
    expect((await detectAnomalies(jobCtx())).sent).toBe(0);
    const messages = await t.db.query<{
      payload: { data: { metric: string; scope: string; value: string } };
    }>(`SELECT payload FROM webhook_messages WHERE org_id = $1 AND type = 'anomaly.detected' ORDER BY seq`, [
      org.id,
    ]);
    const errors = messages.filter((m) => m.payload.data.metric === 'error_rate');
    expect(errors.map((m) => [m.payload.data.scope, m.payload.data.value])).toEqual([
      ['feature', '50'],
      ['org', '36.7'],
    ]);
  });
});

describe('usage insights: errors and security', () => {
  it("hides another org's insights (404) and names bad parameters", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    await send(b.key, [
      {
        id: 'b1',
        member: 'bea',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: ago(60_000),
        conversation_id: 'b-conv',
        usage: { input_tokens: 10, output_tokens: 5 },
      },
    ]);
    const date = dateIn('Europe/Berlin', new Date());
    const paths = [
      `usage/days/${date}`,
      'conversations/b-conv',
      'usage/patterns',
      'usage/forecast',
      'usage/anomalies',
    ];
    for (const path of paths) {
      const r = await t.call('GET', `/v1/orgs/${b.org.id}/${path}`, { key: a.key });
      expect([path, r.status]).toEqual([path, 404]);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(JSON.stringify(r.body)).not.toContain('b-conv');
      // B's own key sees them.
      expect((await t.call('GET', `/v1/orgs/${b.org.id}/${path}`, { key: b.key })).status, path).toBe(200);
    }
    // B's conversation through A's own path is missing, not leaked.
    const cross = await t.call('GET', `/v1/orgs/${a.org.id}/conversations/b-conv`, { key: a.key });
    expect(cross.status).toBe(404);
    const base = `/v1/orgs/${a.org.id}`;
    const bad: [string, number, string][] = [
      ['usage/days/2026-13-01', 400, 'date'],
      ['usage/days/yesterday', 400, 'date'],
      ['usage/days/2026-01-01?colour=red', 422, 'colour'],
      ['conversations/x?limit=0', 400, 'limit'],
      ['conversations/x?cursor=nope', 400, 'cursor'],
      ['usage/patterns?range=2d', 400, 'range'],
      ['usage/anomalies?days=0', 400, 'days'],
      ['usage/anomalies?days=31', 400, 'days'],
      ['usage/forecast?horizon=9', 422, 'horizon'],
    ];
    for (const [path, status, param] of bad) {
      const r = await t.call('GET', `${base}/${path}`, { key: a.key });
      expect([path, r.status, r.body.param]).toEqual([path, status, param]);
    }
    const viewer = await t.call('POST', `${base}/api_keys`, { body: { name: 'v', role: 'viewer' } });
    expect((await t.call('GET', `${base}/usage/forecast`, { key: viewer.body.key })).status).toBe(200);
    expect((await t.call('GET', `${base}/usage/forecast`, { key: '' })).status).toBe(401);
  });
});
