/**
 * Budget against actual in the monthly history: each month up to the current one shows the org's
 * limits in force at its end (as set over time, not only as they stand now) against the month's
 * spend on the limits' basis, to the last unit; months to come and filtered views show none.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ratio } from '../src/domain/money.ts';
import { LimitsSchema } from '../src/http/routes/limits.ts';
import { UsageMonthlySchema } from '../src/http/routes/usage.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { credits, sum } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const DAY = 86_400_000;
const monthOf = (d: Date) => d.toISOString().slice(0, 7);
/** The first instant of the UTC month `back` months before the one of `d`. */
const monthStart = (d: Date, back = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1));

describe('monthly history: budget against actual', () => {
  const now = new Date();
  const thisMonth = monthStart(now);
  // Half a day before this month began: always in the month before, and within ingest's 35 days.
  const lastMonthAt = new Date(thisMonth.getTime() - DAY / 2);
  let org: { id: string; credit_value: string };
  let key: string;
  let spentCredits: Map<string, bigint>;

  async function monthly(query: string) {
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/monthly?${query}`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return UsageMonthlySchema.parse(r.body);
  }
  async function month(at: Date) {
    const m = await monthly(`year=${at.getUTCFullYear()}`);
    return m.data.find((row) => row.month === monthOf(at))!;
  }

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t, { timezone: 'UTC' }));
    const events = [lastMonthAt, lastMonthAt, now].map((at, i) => ({
      id: `m-${i}`,
      member: i === 0 ? 'ana' : 'ben',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      occurred_at: new Date(at.getTime() - i * 60_000).toISOString(),
      usage: { input_tokens: 120_000 + i * 7_777, output_tokens: 40_000 + i },
    }));
    const r = await t.call('POST', '/v1/events', { key, body: { events } });
    expect(r.status).toBe(200);
    const answers: { credits: string; status: string }[] = r.body.results;
    for (const a of answers) expect(a.status).toBe('accepted');
    spentCredits = new Map([
      [monthOf(lastMonthAt), sum(answers.slice(0, 2), (a) => credits(a.credits))],
      [monthOf(now), credits(answers[2]!.credits)],
    ]);
    // Limits set early last month and changed since: last month keeps the ones in force then.
    await t.db.query(
      `INSERT INTO org_limit_changes (org_id, changed_at, alert_threshold, allowed_limit) VALUES ($1, $2, '0.5', '0.75')`,
      [org.id, new Date(monthStart(now, 1).getTime() + 3_600_000)],
    );
    const put = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '80', allowed_limit: '100.5' },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
  });

  /** The month's spend in the org currency: its credits at the org's credit value, exactly. */
  const spentMoney = (m: string) =>
    Ratio.fromUnits(spentCredits.get(m)!, 6).mul(Ratio.parse(org.credit_value));

  it("compares last month with the limits in force at its end, not today's", async () => {
    const row = await month(lastMonthAt);
    const spent = spentMoney(monthOf(lastMonthAt));
    expect(row.limit).toEqual({
      alert_threshold: '0.5',
      allowed_limit: '0.75',
      spent: spent.toDecimal(12),
      used_percent: spent.mul(Ratio.int(100)).div(Ratio.parse('0.75')).toDecimal(1),
      status:
        spent.cmp(Ratio.parse('0.75')) >= 0
          ? 'exceeded'
          : spent.cmp(Ratio.parse('0.5')) >= 0
            ? 'alert'
            : 'ok',
    });
    // The events were made to overrun last month's small limit.
    expect(row.limit!.status).toBe('exceeded');
  });

  it('compares this month with the limits set now, as the limits page counts it', async () => {
    const row = await month(now);
    const spent = spentMoney(monthOf(now));
    const limits = LimitsSchema.parse((await t.call('GET', `/v1/orgs/${org.id}/limits`, { key })).body);
    expect(row.limit).toEqual({
      alert_threshold: '80',
      allowed_limit: '100.5',
      spent: spent.toDecimal(12),
      used_percent: spent.mul(Ratio.int(100)).div(Ratio.parse('100.5')).toDecimal(1),
      status: 'ok',
    });
    expect(row.limit!.spent).toBe(limits.spent);
  });

  it('shows no limit for a month that ended before any was set', async () => {
    const before = new Date(monthStart(now, 1).getTime() - DAY);
    expect((await month(before)).limit).toBeNull();
  });

  it('shows no limit for months to come', async () => {
    const next = await monthly(`year=${now.getUTCFullYear() + 1}`);
    expect(next.data.map((row) => row.limit)).toEqual(Array(12).fill(null));
  });

  it('shows no limit in a view narrowed by a filter: the limit is org-wide', async () => {
    const filtered = await monthly(`year=${now.getUTCFullYear()}&member=ben`);
    expect(filtered.data.every((row) => row.limit === null)).toBe(true);
    expect(filtered.data.find((row) => row.month === monthOf(now))!.calls).toBe(1);
  });

  it('shows no limit once the limits are cleared', async () => {
    const clear = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: null, allowed_limit: null },
    });
    expect(clear.status).toBe(200);
    expect((await month(now)).limit).toBeNull();
    expect((await month(lastMonthAt)).limit!.allowed_limit).toBe('0.75');
  });
});

describe('migration 0031 backfill', () => {
  it('recovers past limits from the audit log, else from the limits as they stand', async () => {
    const audited = await createOrgWithKey(t);
    for (const [alert, allowed] of [
      ['10', '20'],
      [null, '35.25'],
    ]) {
      const r = await t.call('PUT', `/v1/orgs/${audited.org.id}/limits`, {
        key: audited.key,
        body: { alert_threshold: alert, allowed_limit: allowed },
      });
      expect(r.status).toBe(200);
    }
    const unaudited = await createOrgWithKey(t);
    await t.db.query(`INSERT INTO org_limits (org_id, alert_threshold, allowed_limit) VALUES ($1, 7, NULL)`, [
      unaudited.org.id,
    ]);
    const orgs = [audited.org.id, unaudited.org.id];
    const snapshot = () =>
      t.db.query(
        `SELECT org_id, changed_at, alert_threshold::text, allowed_limit::text FROM org_limit_changes
          WHERE org_id = ANY($1::text[]) ORDER BY org_id, changed_at, id`,
        [orgs],
      );
    const written = await snapshot();
    const sql = readFileSync(
      new URL('../src/store/migrations/0031_limit_history.sql', import.meta.url),
      'utf8',
    );
    await t.db.transaction(async (tx) => {
      await tx.query('DELETE FROM org_limit_changes WHERE org_id = ANY($1::text[])', [orgs]);
      await tx.exec(sql.slice(sql.indexOf('-- Earlier changes')));
    });
    const recovered = await snapshot();
    // The audit entry is written a moment after the change it records: times are not compared.
    const timeless = (rows: Record<string, unknown>[]) => rows.map(({ changed_at: _, ...r }) => r);
    expect(timeless(recovered.filter((r) => r.org_id === audited.org.id))).toEqual(
      timeless(written.filter((r) => r.org_id === audited.org.id)),
    );
    expect(timeless(recovered.filter((r) => r.org_id === unaudited.org.id))).toEqual([
      { org_id: unaudited.org.id, alert_threshold: '7.000000', allowed_limit: null },
    ]);
  });
});

describe('monthly history: the limit counts what the limit itself counted', () => {
  it('agrees with the limits page in a half-hour zone, where the totals start the month on the hour', async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Kolkata', currency: 'USD' });
    const now = new Date();
    const local = new Intl.DateTimeFormat('en-CA', {
      timeZone: 'Asia/Kolkata',
      year: 'numeric',
      month: '2-digit',
    })
      .format(now)
      .split('-')
      .map(Number) as [number, number];
    // Local midnight on the 1st in Kolkata (+05:30) is 18:30Z the day before.
    const monthStartsAt = new Date(Date.UTC(local[0], local[1] - 1, 1) - 5.5 * 3_600_000);
    if (now.getTime() - monthStartsAt.getTime() < 15 * 60_000) return; // the month's first minutes
    const send = async (id: string, at: Date) => {
      const r = await t.call('POST', '/v1/events', {
        key,
        body: {
          events: [
            {
              id,
              member: 'ana',
              feature: 'Chat',
              provider: 'openai',
              model: 'gpt-4o',
              occurred_at: at.toISOString(),
              usage: { input_tokens: 1_000_000 },
            },
          ],
        },
      });
      expect(r.body.results[0].status).toBe('accepted');
    };
    // 23:40 on the last day of last month, local time, and 00:10 on the 1st.
    await send('late', new Date(monthStartsAt.getTime() - 20 * 60_000));
    await send('early', new Date(monthStartsAt.getTime() + 10 * 60_000));
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '8', allowed_limit: '10' },
    });
    const limits = LimitsSchema.parse((await t.call('GET', `/v1/orgs/${org.id}/limits`, { key })).body);
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/monthly?year=${local[0]}`, { key });
    const row = UsageMonthlySchema.parse(r.body).data.find(
      (m) => m.month === `${local[0]}-${String(local[1]).padStart(2, '0')}`,
    )!;
    // The totals' month starts at 18:00Z and holds both calls; the limit's month holds one.
    expect(Ratio.parse(row.cost).cmp(Ratio.parse(limits.spent).mul(Ratio.int(2)))).toBe(0);
    expect(row.limit).toMatchObject({ spent: limits.spent, status: limits.status });
  });

  it("keeps a past month's spend in money after the credit value changes", async () => {
    const { org, key } = await createOrgWithKey(t, { timezone: 'UTC' });
    const lastMonthAt = new Date(monthStart(new Date()).getTime() - DAY / 2);
    const r = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'old',
            member: 'ana',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: lastMonthAt.toISOString(),
            usage: { output_tokens: 100_000 },
          },
        ],
      },
    });
    expect(r.body.results[0]).toMatchObject({ status: 'accepted', cost: '1.38' });
    await t.db.query(
      `INSERT INTO org_limit_changes (org_id, changed_at, alert_threshold, allowed_limit) VALUES ($1, $2, NULL, '2')`,
      [org.id, monthStart(new Date(), 1)],
    );
    const lastMonth = async () => {
      const m = await t.call('GET', `/v1/orgs/${org.id}/usage/monthly?year=${lastMonthAt.getUTCFullYear()}`, {
        key,
      });
      return UsageMonthlySchema.parse(m.body).data.find((row) => row.month === monthOf(lastMonthAt))!;
    };
    expect((await lastMonth()).limit).toMatchObject({ spent: '1.38', used_percent: '69' });
    expect((await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { credit_value: '0.02' } })).status).toBe(
      200,
    );
    expect((await lastMonth()).limit).toMatchObject({ spent: '1.38', used_percent: '69' });
  });
});
