/**
 * Raw event retention: the settings (operator default, org's own, validation, who may lengthen it)
 * and the purge job. After a purge the usage figures, the monthly totals, the balance and the ledger
 * are identical; the events log no longer lists the purged events; a second run deletes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calendarMonth } from '../src/domain/periods.ts';
import { jobCatalog } from '../src/jobs/catalog.ts';
import { registerJobs, runDueJob } from '../src/jobs/runner.ts';
import type { Ctx } from '../src/services/context.ts';
import { ingestEvents } from '../src/services/events/ingestEvents.ts';
import { purgeExpiredEvents, retentionCutoff } from '../src/services/maintenance/purgeExpiredEvents.ts';
import { createOrgWithKey, onServer, type Response, startTally, type TestTally } from './support/harness.ts';

const ZONE = 'America/New_York';
let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

const event = (id: string, at: Date, member = 'rita') => ({
  id,
  member,
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: at.toISOString(),
  conversation_id: `conv-${id}`,
  usage: { input_tokens: 1200, output_tokens: 340 },
});

function expectInvalid(res: Response, status: number, param: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body.param).toBe(param);
}

describe('retention settings', () => {
  it('validates the months and keeps the operator default apart from each org', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: ZONE });
    const path = `/v1/orgs/${org.id}/retention`;
    expect((await t.call('GET', '/v1/settings/retention')).body).toEqual({
      object: 'retention_settings',
      raw_event_months: null,
    });
    expect((await t.call('GET', path, { key })).body).toEqual({
      object: 'retention',
      org_id: org.id,
      raw_event_months: null,
      source: 'operator_default',
      purged_before: null,
    });
    for (const months of [0, -1, 1.5, '3', 1201, true]) {
      expectInvalid(
        await t.call('PUT', path, { body: { raw_event_months: months } }),
        422,
        'raw_event_months',
      );
      expectInvalid(
        await t.call('PUT', '/v1/settings/retention', { body: { raw_event_months: months } }),
        422,
        'raw_event_months',
      );
    }
    expectInvalid(await t.call('PUT', path, { body: {} }), 422, 'raw_event_months');
    expect((await t.call('PUT', path, { body: { raw_event_months: 3, days: 1 } })).status).toBe(422);
    expect((await t.call('GET', path)).body.source).toBe('operator_default');

    // An org key cannot set the operator default, and may shorten but not lengthen past it.
    expect(
      (await t.call('PUT', '/v1/settings/retention', { key, body: { raw_event_months: 1 } })).status,
    ).toBe(403);
    const set = await t.call('PUT', '/v1/settings/retention', { body: { raw_event_months: 24 } });
    expect(set.body).toEqual({ object: 'retention_settings', raw_event_months: 24 });
    expect((await t.call('GET', path, { key })).body).toMatchObject({
      raw_event_months: 24,
      source: 'operator_default',
    });
    for (const months of [25, null]) {
      expectInvalid(
        await t.call('PUT', path, { key, body: { raw_event_months: months } }),
        403,
        'raw_event_months',
      );
    }
    expect((await t.call('PUT', path, { key, body: { raw_event_months: 6 } })).body).toMatchObject({
      raw_event_months: 6,
      source: 'org',
    });
    // The operator may keep one org's raw events forever.
    expect((await t.call('PUT', path, { body: { raw_event_months: null } })).body).toMatchObject({
      raw_event_months: null,
      source: 'org',
    });
    const viewer = await t.call('POST', `/v1/orgs/${org.id}/api_keys`, {
      key,
      body: { name: 'viewer', role: 'viewer' },
    });
    expect((await t.call('PUT', path, { key: viewer.body.key, body: { raw_event_months: 1 } })).status).toBe(
      403,
    );
    expect((await t.call('GET', path, { key: viewer.body.key })).status).toBe(200);
    expect((await t.call('DELETE', path, { key })).body).toMatchObject({
      raw_event_months: 24,
      source: 'operator_default',
    });
    expect((await t.call('PUT', '/v1/settings/retention', { body: { raw_event_months: null } })).status).toBe(
      200,
    );
    expect((await t.call('GET', path)).body.raw_event_months).toBeNull();
  });
});

describe('retentionCutoff', () => {
  it('keeps the current month and N whole months before it, in the org zone, and at least 35 days', () => {
    // 2027-03-20 in New York: 2 months back is 2027-01-01 00:00 EST (05:00 UTC).
    const at = new Date('2027-03-20T12:00:00Z');
    expect(retentionCutoff(ZONE, 2, at).toISOString()).toBe('2027-01-01T05:00:00.000Z');
    expect(retentionCutoff('Asia/Tokyo', 2, at).toISOString()).toBe('2026-12-31T15:00:00.000Z');
    expect(retentionCutoff(ZONE, 14, at).toISOString()).toBe('2026-01-01T05:00:00.000Z');
    // One month on 2 March would keep only since 1 February (29 days): the 35 days win.
    const early = new Date('2027-03-02T12:00:00Z');
    expect(retentionCutoff(ZONE, 1, early).toISOString()).toBe('2027-01-26T12:00:00.000Z');
  });
});

describe('purge_raw_events', () => {
  it('deletes only raw events before the cutoff; totals, balance and ledger stay identical', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: ZONE });
    const forever = await createOrgWithKey(t, { timezone: ZONE });
    const path = `/v1/orgs/${org.id}`;
    const now = new Date();
    const month = calendarMonth(ZONE, now);
    // The last instant of last month in New York, a day before it, the first instant of this month,
    // and now: all within the 35 days ingest accepts.
    const events = [
      event('old-edge', new Date(month.start.getTime() - 1)),
      event('old-day', new Date(month.start.getTime() - 86_400_000), 'sam'),
      event('kept-edge', month.start),
      event('kept-now', new Date(Math.max(month.start.getTime(), now.getTime() - 60_000))),
    ];
    for (const [who, k] of [
      [org, key],
      [forever.org, forever.key],
    ] as const) {
      const ingest = await t.call('POST', '/v1/events', { key: k, body: { events } });
      expect(
        ingest.body.results?.map((r: { status: string }) => r.status),
        JSON.stringify(ingest.body),
      ).toEqual(events.map(() => 'accepted'));
      expect(who.id).toBeTruthy();
    }
    expect((await t.call('PUT', '/v1/settings/retention', { body: { raw_event_months: 2 } })).status).toBe(
      200,
    );
    expect(
      (await t.call('PUT', `/v1/orgs/${forever.org.id}/retention`, { body: { raw_event_months: null } }))
        .status,
    ).toBe(200);

    const span = `range=custom&from=${new Date(month.start.getTime() - 40 * 86_400_000).toISOString()}&to=${new Date(now.getTime() + 3_600_000).toISOString()}`;
    const lastMonth = new Date(month.start.getTime() - 1);
    const year = Number(
      new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric' }).format(lastMonth),
    );
    const monthText = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit' })
      .format(lastMonth)
      .slice(0, 7);
    const strip = (body: Record<string, unknown>) => {
      const { request_id: _, ...rest } = body;
      return rest;
    };
    const figures = async () => ({
      summary: strip((await t.call('GET', `${path}/usage/summary?${span}`, { key })).body),
      byMember: strip((await t.call('GET', `${path}/usage/breakdown?by=member&${span}`, { key })).body),
      daily: strip((await t.call('GET', `${path}/usage/daily?month=${monthText}`, { key })).body),
      monthly: strip((await t.call('GET', `${path}/usage/monthly?year=${year}`, { key })).body),
      balance: strip((await t.call('GET', `${path}/balance`, { key })).body),
      ledger: strip((await t.call('GET', `${path}/ledger?limit=1000`, { key })).body),
    });
    const logIds = async (orgPath: string, k: string) =>
      (await t.call('GET', `${orgPath}/usage/events?${span}&limit=100`, { key: k })).body.data
        .map((e: { id: string }) => e.id)
        .sort();
    const before = await figures();
    expect(before.summary.calls).toBe(4);
    expect((before.daily.total as { calls: number }).calls).toBe(2);
    expect(await logIds(path, key)).toEqual(['kept-edge', 'kept-now', 'old-day', 'old-edge']);

    // Today nothing is old enough: a retention of 2 months keeps at least this month and the two before.
    expect(await purgeExpiredEvents(t.db)).toMatchObject({ purged: 0, done: true });
    // Two months and ten days later, last month is past the retention.
    const later = new Date(month.start.getTime() + 70 * 86_400_000);
    const laterMonth = calendarMonth(ZONE, later);
    const purgeAt = new Date(laterMonth.start.getTime() + 10 * 86_400_000);
    expect(retentionCutoff(ZONE, 2, purgeAt).toISOString()).toBe(month.start.toISOString());
    const first = await purgeExpiredEvents(t.db, { now: purgeAt, batch: 1 });
    expect(first).toEqual({ orgs: 1, purged: 2, done: true });

    expect(await figures()).toEqual(before);
    expect(await logIds(path, key)).toEqual(['kept-edge', 'kept-now']);
    // The org that keeps raw events forever lost nothing.
    expect(await logIds(`/v1/orgs/${forever.org.id}`, forever.key)).toEqual([
      'kept-edge',
      'kept-now',
      'old-day',
      'old-edge',
    ]);
    const exported = await t.call('GET', `${path}/usage/export?format=jsonl&${span}`, { key });
    expect(exported.body).not.toContain('old-edge');
    expect(exported.body).toContain('kept-edge');
    expect((await t.call('GET', `${path}/retention`, { key })).body).toMatchObject({
      raw_event_months: 2,
      source: 'operator_default',
      purged_before: month.start.toISOString(),
    });

    // Run again, and through the scheduler: nothing more goes.
    const second = await purgeExpiredEvents(t.db, { now: purgeAt });
    expect(second).toEqual({ orgs: 0, purged: 0, done: true });
    const jobs = jobCatalog({
      ...t,
      principal: { kind: 'operator', id: 'op_jobs' },
      requestId: 'jobs',
    }).filter((j) => j.name === 'purge_raw_events');
    expect(jobs).toHaveLength(1);
    await registerJobs(t.db, jobs);
    expect(await runDueJob(t.db, jobs, 'w1', t.logger)).toBe('purge_raw_events');
    const [count] = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM events WHERE org_id = ANY($1)',
      [[org.id, forever.org.id]],
    );
    expect(count!.n).toBe(6);
    expect(await figures()).toEqual(before);

    // A trusted history import of the same events cannot tell a purged one from a new one: refused,
    // not counted twice; the kept ones are recognised as duplicates.
    const ctx: Ctx = {
      db: t.db,
      config: t.config,
      prices: t.prices,
      principal: { kind: 'operator', id: 'op_test' },
      requestId: 'req_test',
    };
    const imported = await ingestEvents(
      ctx,
      events.map((e) => ({ ...e, org_id: org.id })),
      { backfill: true },
    );
    expect(imported.map((r) => [r.id, r.status, r.error?.code ?? null])).toEqual([
      ['old-edge', 'rejected', 'retention_purged'],
      ['old-day', 'rejected', 'retention_purged'],
      ['kept-edge', 'duplicate', null],
      ['kept-now', 'duplicate', null],
    ]);
    expect(await figures()).toEqual(before);
  });
});

describe.runIf(onServer)('purge_raw_events on a Postgres server', () => {
  it('lets concurrent runs share the work: each event deleted once, none left, none counted twice', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: ZONE });
    const ingest = await t.call('POST', '/v1/events', {
      key,
      body: { events: [event('model', new Date())] },
    });
    expect(ingest.body.results[0].status).toBe('accepted');
    // 3 000 copies of it dated 200 days back (only raw rows: this is about the deleting).
    const n = 3_000;
    await t.db.query(
      `INSERT INTO events (org_id, id, member_id, api_key_id, feature, provider, model, occurred_at, usage, credits, cost,
                           currency, provider_cost_usd, components, pricing, content_hash)
       SELECT org_id, 'copy-' || g, member_id, api_key_id, feature, provider, model, now() - interval '200 days', usage,
              credits, cost, currency, provider_cost_usd, components, pricing, content_hash
         FROM events, generate_series(1, $2::int) g WHERE org_id = $1 AND id = 'model'`,
      [org.id, n],
    );
    await t.call('PUT', `/v1/orgs/${org.id}/retention`, { body: { raw_event_months: 1 } });
    const runs = await Promise.all([1, 2, 3].map(() => purgeExpiredEvents(t.db, { batch: 100 })));
    expect(runs.reduce((sum, r) => sum + r.purged, 0)).toBe(n);
    const [left] = await t.db.query<{ old: number; all: number }>(
      `SELECT count(*) FILTER (WHERE occurred_at < now() - interval '100 days')::int AS old, count(*)::int AS all
         FROM events WHERE org_id = $1`,
      [org.id],
    );
    expect(left).toEqual({ old: 0, all: 1 });
    const [purges] = await t.db.query<{ purged_events: string }>(
      'SELECT purged_events FROM raw_event_purges WHERE org_id = $1',
      [org.id],
    );
    expect(Number(purges!.purged_events)).toBe(n);
  });
});
