/**
 * Periods in the org's time zone: calendar months (limits and budgets) and billing cycles (the plan
 * allowance), across DST days, anchors on the 31st in short months, and zones whose clocks jump
 * over midnight. Then the plan allowance: exactly one grant per cycle, however often and however
 * concurrently it is ensured. Every expected instant is written out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  billingCycle,
  calendarMonth,
  localDate,
  localDaysBetween,
  startOfLocalDay,
} from '../src/domain/periods.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { ensurePlanGrant } from '../src/services/ledger/ensurePlanGrant.ts';
import { getBalance } from '../src/services/ledger/getBalance.ts';
import { issuePlanGrants } from '../src/services/ledger/issuePlanGrants.ts';
import { loadOrg } from '../src/services/orgs/shape.ts';
import { onServer, startTally, type TestTally } from './support/harness.ts';

const iso = (p: { start: Date; end: Date }) => [p.start.toISOString(), p.end.toISOString()];
const at = (text: string) => new Date(text);

describe('periods: calendar months in the org time zone', () => {
  it.each([
    // Berlin, March 2026: starts in winter time (+1), ends in summer time (+2); DST on the 29th.
    ['Europe/Berlin', '2026-03-29T12:00:00.000Z', '2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z'],
    ['Europe/Berlin', '2026-02-28T23:00:00.000Z', '2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z'],
    ['Europe/Berlin', '2026-02-28T22:59:59.999Z', '2026-01-31T23:00:00.000Z', '2026-02-28T23:00:00.000Z'],
    // Berlin, October 2026: back to winter time on the 25th, so the month ends at 23:00 UTC.
    ['Europe/Berlin', '2026-10-25T01:30:00.000Z', '2026-09-30T22:00:00.000Z', '2026-10-31T23:00:00.000Z'],
    ['Europe/Berlin', '2026-10-31T22:59:59.999Z', '2026-09-30T22:00:00.000Z', '2026-10-31T23:00:00.000Z'],
    ['Europe/Berlin', '2026-10-31T23:00:00.000Z', '2026-10-31T23:00:00.000Z', '2026-11-30T23:00:00.000Z'],
    // New York: DST starts on 2026-03-08 and ends on 2026-11-01, the first of the month.
    ['America/New_York', '2026-03-08T06:59:00.000Z', '2026-03-01T05:00:00.000Z', '2026-04-01T04:00:00.000Z'],
    ['America/New_York', '2026-11-01T03:59:59.999Z', '2026-10-01T04:00:00.000Z', '2026-11-01T04:00:00.000Z'],
    ['America/New_York', '2026-11-01T04:00:00.000Z', '2026-11-01T04:00:00.000Z', '2026-12-01T05:00:00.000Z'],
    ['America/New_York', '2026-11-01T06:30:00.000Z', '2026-11-01T04:00:00.000Z', '2026-12-01T05:00:00.000Z'],
    // Southern hemisphere: Sydney goes to summer time on 2026-10-04.
    ['Australia/Sydney', '2026-10-15T00:00:00.000Z', '2026-09-30T14:00:00.000Z', '2026-10-31T13:00:00.000Z'],
    ['UTC', '2026-12-31T23:59:59.999Z', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
  ])('%s at %s: [%s, %s)', (zone, instant, start, end) => {
    expect(iso(calendarMonth(zone, at(instant)))).toEqual([start, end]);
  });
});

describe('periods: billing cycles in the org time zone', () => {
  it.each([
    // Anchored on the 29th in Berlin: the cycle starting on the DST day begins at local midnight,
    // still winter time (23:00 UTC), and ends at local midnight in summer time (22:00 UTC).
    ['Europe/Berlin', 29, '2026-03-29T12:00:00.000Z', '2026-03-28T23:00:00.000Z', '2026-04-28T22:00:00.000Z'],
    ['Europe/Berlin', 29, '2026-03-28T23:00:00.000Z', '2026-03-28T23:00:00.000Z', '2026-04-28T22:00:00.000Z'],
    // ... and the one before it started on 28 February (no 29th in 2026).
    ['Europe/Berlin', 29, '2026-03-28T22:59:59.999Z', '2026-02-27T23:00:00.000Z', '2026-03-28T23:00:00.000Z'],
    // Anchored on the 25th: the cycle starting on the day DST ends begins in summer time.
    ['Europe/Berlin', 25, '2026-10-25T12:00:00.000Z', '2026-10-24T22:00:00.000Z', '2026-11-24T23:00:00.000Z'],
    ['Europe/Berlin', 25, '2026-10-24T21:59:59.999Z', '2026-09-24T22:00:00.000Z', '2026-10-24T22:00:00.000Z'],
    // New York, anchored on the 8th (DST starts 2026-03-08 at 02:00) and on the 1st (DST ends 2026-11-01).
    [
      'America/New_York',
      8,
      '2026-03-08T05:00:00.000Z',
      '2026-03-08T05:00:00.000Z',
      '2026-04-08T04:00:00.000Z',
    ],
    [
      'America/New_York',
      8,
      '2026-03-08T04:59:59.999Z',
      '2026-02-08T05:00:00.000Z',
      '2026-03-08T05:00:00.000Z',
    ],
    [
      'America/New_York',
      1,
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T04:00:00.000Z',
      '2026-12-01T05:00:00.000Z',
    ],
    // Anchored on the 31st: short months clamp to their last day, then the cycle goes back to the 31st.
    ['Europe/Berlin', 31, '2026-02-15T12:00:00.000Z', '2026-01-30T23:00:00.000Z', '2026-02-27T23:00:00.000Z'],
    ['Europe/Berlin', 31, '2026-03-01T12:00:00.000Z', '2026-02-27T23:00:00.000Z', '2026-03-30T22:00:00.000Z'],
    ['Europe/Berlin', 31, '2026-04-15T12:00:00.000Z', '2026-03-30T22:00:00.000Z', '2026-04-29T22:00:00.000Z'],
    ['Europe/Berlin', 31, '2026-11-23T12:00:00.000Z', '2026-10-30T23:00:00.000Z', '2026-11-29T23:00:00.000Z'],
    ['UTC', 31, '2028-02-10T00:00:00.000Z', '2028-01-31T00:00:00.000Z', '2028-02-29T00:00:00.000Z'],
    ['UTC', 31, '2028-03-01T00:00:00.000Z', '2028-02-29T00:00:00.000Z', '2028-03-31T00:00:00.000Z'],
    ['UTC', 30, '2026-03-29T23:59:59.999Z', '2026-02-28T00:00:00.000Z', '2026-03-30T00:00:00.000Z'],
    [
      'America/New_York',
      31,
      '2026-06-15T12:00:00.000Z',
      '2026-05-31T04:00:00.000Z',
      '2026-06-30T04:00:00.000Z',
    ],
    [
      'America/New_York',
      31,
      '2026-06-30T12:00:00.000Z',
      '2026-06-30T04:00:00.000Z',
      '2026-07-31T04:00:00.000Z',
    ],
    // Santiago jumps from 00:00 to 01:00 on 2026-09-06: that day starts at 01:00 local (04:00 UTC),
    // not at 23:00 on the 5th.
    [
      'America/Santiago',
      6,
      '2026-09-10T12:00:00.000Z',
      '2026-09-06T04:00:00.000Z',
      '2026-10-06T03:00:00.000Z',
    ],
    [
      'America/Santiago',
      6,
      '2026-09-06T03:30:00.000Z',
      '2026-08-06T04:00:00.000Z',
      '2026-09-06T04:00:00.000Z',
    ],
    // Havana jumps from 00:00 to 01:00 on 2026-03-08.
    ['America/Havana', 8, '2026-03-20T12:00:00.000Z', '2026-03-08T05:00:00.000Z', '2026-04-08T04:00:00.000Z'],
  ])('%s anchored on day %i at %s: [%s, %s)', (zone, anchor, instant, start, end) => {
    expect(iso(billingCycle(zone, anchor, at(instant)))).toEqual([start, end]);
  });

  it('starts every local day at its first instant, on DST days too', () => {
    const day = (zone: string, y: number, m: number, d: number) =>
      startOfLocalDay(zone, y, m, d).toISOString();
    expect(day('Europe/Berlin', 2026, 3, 29)).toBe('2026-03-28T23:00:00.000Z');
    expect(day('Europe/Berlin', 2026, 3, 30)).toBe('2026-03-29T22:00:00.000Z');
    expect(day('Europe/Berlin', 2026, 10, 25)).toBe('2026-10-24T22:00:00.000Z');
    expect(day('Europe/Berlin', 2026, 10, 26)).toBe('2026-10-25T23:00:00.000Z');
    expect(day('America/New_York', 2026, 3, 8)).toBe('2026-03-08T05:00:00.000Z');
    expect(day('America/New_York', 2026, 11, 1)).toBe('2026-11-01T04:00:00.000Z');
    expect(day('America/New_York', 2026, 11, 2)).toBe('2026-11-02T05:00:00.000Z');
    // Midnight skipped: the day starts when the clocks jump (01:00 local).
    expect(day('America/Santiago', 2026, 9, 6)).toBe('2026-09-06T04:00:00.000Z');
    expect(day('America/Havana', 2026, 3, 8)).toBe('2026-03-08T05:00:00.000Z');
    // Midnight repeated (Havana falls back from 01:00 to 00:00 on 2026-11-01): the first one.
    expect(day('America/Havana', 2026, 11, 1)).toBe('2026-11-01T04:00:00.000Z');
    // Beirut falls back from 00:00 to 23:00 the day before: the day starts at the later midnight.
    expect(day('Asia/Beirut', 2026, 10, 25)).toBe('2026-10-24T22:00:00.000Z');
    // Samoa skipped 30 December 2011 entirely: it "starts" when 31 December does.
    expect(day('Pacific/Apia', 2011, 12, 30)).toBe('2011-12-30T10:00:00.000Z');
    expect(day('Pacific/Apia', 2011, 12, 31)).toBe('2011-12-30T10:00:00.000Z');
    // Every answer is on the asked day (or the next, when the asked day never happened).
    for (const [zone, y, m, d] of [
      ['America/Santiago', 2026, 9, 6],
      ['America/Havana', 2026, 3, 8],
      ['Europe/Berlin', 2026, 3, 29],
    ] as const) {
      expect(localDate(zone, startOfLocalDay(zone, y, m, d))).toEqual({ year: y, month: m, day: d });
      expect(localDate(zone, new Date(startOfLocalDay(zone, y, m, d).getTime() - 1)).day).not.toBe(d);
    }
  });
});

describe('plan allowance: one grant per billing cycle', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally();
  });
  afterAll(() => t?.close());

  async function org(timezone: string, anchor: string, plan = '500') {
    const res = await t.call('POST', '/v1/orgs', {
      body: {
        name: 'Cycles',
        currency: 'EUR',
        timezone,
        billing_cycle_anchor: anchor,
        plan_allowance_credits: plan,
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return loadOrg(t.db, res.body.id);
  }

  const planGrants = (orgId: string) =>
    t.db.query<{ cycle_start: Date; effective_at: Date; expires_at: Date; amount: string }>(
      `SELECT cycle_start, effective_at, expires_at, amount FROM grants
        WHERE org_id = $1 AND kind = 'plan' ORDER BY cycle_start`,
      [orgId],
    );
  const shown = (rows: Awaited<ReturnType<typeof planGrants>>) =>
    rows.map((r) => ({
      cycle_start: r.cycle_start.toISOString(),
      effective_at: r.effective_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      amount: r.amount,
    }));

  it('issues exactly one grant per cycle when ensured repeatedly, at boundaries in the org zone', async () => {
    // Berlin, anchored on the 25th: a cycle boundary on the day DST ends (2026-10-25).
    const berlin = await org('Europe/Berlin', '2026-01-25');
    const before = at('2026-10-24T21:59:59.999Z');
    const after = at('2026-10-24T22:00:00.000Z');
    for (const now of [before, before, after, after, before, after, at('2026-11-24T22:59:59.999Z')]) {
      await t.db.transaction((tx) => ensurePlanGrant(tx, berlin, now));
    }
    await issuePlanGrants(t.db, after);
    await issuePlanGrants(t.db, before);
    expect(shown(await planGrants(berlin.id))).toEqual([
      {
        cycle_start: '2026-09-24T22:00:00.000Z',
        effective_at: '2026-09-24T22:00:00.000Z',
        expires_at: '2026-10-24T22:00:00.000Z',
        amount: '500000000',
      },
      {
        cycle_start: '2026-10-24T22:00:00.000Z',
        effective_at: '2026-10-24T22:00:00.000Z',
        expires_at: '2026-11-24T23:00:00.000Z',
        amount: '500000000',
      },
    ]);

    // New York anchored on the 31st: April has 30 days, so a cycle starts on 30 April.
    const ny = await org('America/New_York', '2026-01-31', '20');
    for (const now of ['2026-04-30T03:59:59.999Z', '2026-04-30T04:00:00.000Z', '2026-05-31T03:59:59.999Z']) {
      await t.db.transaction((tx) => ensurePlanGrant(tx, ny, at(now)));
      await t.db.transaction((tx) => ensurePlanGrant(tx, ny, at(now)));
    }
    expect(shown(await planGrants(ny.id)).map((g) => [g.cycle_start, g.expires_at])).toEqual([
      ['2026-03-31T04:00:00.000Z', '2026-04-30T04:00:00.000Z'],
      ['2026-04-30T04:00:00.000Z', '2026-05-31T04:00:00.000Z'],
    ]);
    expect(await checkLedger(t.db, berlin.id)).toEqual([]);
    expect(await checkLedger(t.db, ny.id)).toEqual([]);
  });

  it('gives the rest of a cycle an earlier grant partly covered when the time zone moves, not a second allowance', async () => {
    const org0 = await org('UTC', '2027-01-01');
    await t.db.transaction((tx) => ensurePlanGrant(tx, org0, at('2027-02-15T00:00:00.000Z')));
    const moved = await t.call('PATCH', `/v1/orgs/${org0.id}`, { body: { timezone: 'America/Los_Angeles' } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const la = await loadOrg(t.db, org0.id);
    // February's grant ended at midnight UTC; Los Angeles's February runs 8 hours longer.
    for (const now of ['2027-03-01T03:00:00.000Z', '2027-03-01T09:00:00.000Z', '2027-03-01T09:00:00.000Z']) {
      await t.db.transaction((tx) => ensurePlanGrant(tx, la, at(now)));
    }
    expect(shown(await planGrants(org0.id))).toEqual([
      {
        cycle_start: '2027-02-01T00:00:00.000Z',
        effective_at: '2027-02-01T00:00:00.000Z',
        expires_at: '2027-03-01T00:00:00.000Z',
        amount: '500000000',
      },
      // 8 of the cycle's 672 hours: 500 x 8 / 672 credits, rounded down to the micro-credit.
      {
        cycle_start: '2027-02-01T08:00:00.000Z',
        effective_at: '2027-03-01T00:00:00.000Z',
        expires_at: '2027-03-01T08:00:00.000Z',
        amount: '5952380',
      },
      {
        cycle_start: '2027-03-01T08:00:00.000Z',
        effective_at: '2027-03-01T08:00:00.000Z',
        expires_at: '2027-04-01T07:00:00.000Z',
        amount: '500000000',
      },
    ]);
    expect(await checkLedger(t.db, org0.id)).toEqual([]);
  });

  it("counts a cycle's days elapsed and remaining in local calendar days, across a clock change", async () => {
    const berlin = await org('Europe/Berlin', '2027-01-01');
    // 00:30 on 30 March in Berlin, the day after clocks went forward: 28 days and 23.5 hours since
    // 1 March began, yet the 30th day of the cycle.
    const now = at('2027-03-29T22:30:00.000Z');
    expect(localDaysBetween('Europe/Berlin', at('2027-02-28T23:00:00.000Z'), now)).toBe(29);
    const operator = { ...t, principal: { kind: 'operator' as const, id: 'op_test' }, requestId: 'days' };
    const balance = await getBalance(operator, berlin.id, now);
    // The 30th day elapsed (today), the 31st to come: the 31 days of March.
    expect(balance.cycle).toMatchObject({ days_elapsed: 30, days_remaining: 1 });
  });

  it('issues exactly one grant when 20 transactions ensure it at once', async () => {
    // Berlin, anchored on the 29th: the cycle that starts on the DST day (2026-03-29).
    const berlin = await org('Europe/Berlin', '2026-01-29');
    const now = at('2026-03-28T23:00:00.000Z');
    await Promise.all(
      Array.from({ length: 20 }, () =>
        t.db.transaction(async (tx) => {
          await ensurePlanGrant(tx, berlin, now);
          // Keep the transaction open a little, so the others really overlap with it.
          if (onServer) await tx.query('SELECT pg_sleep(0.02)');
        }),
      ),
    );
    expect(shown(await planGrants(berlin.id))).toEqual([
      {
        cycle_start: '2026-03-28T23:00:00.000Z',
        effective_at: '2026-03-28T23:00:00.000Z',
        expires_at: '2026-04-28T22:00:00.000Z',
        amount: '500000000',
      },
    ]);
    const [balance] = await t.db.query<{ granted: string }>(
      'SELECT granted FROM org_balances WHERE org_id = $1',
      [berlin.id],
    );
    expect(balance!.granted).toBe('500000000');
    expect(await checkLedger(t.db, berlin.id)).toEqual([]);
  });

  it.runIf(onServer)('issues exactly one grant when many HTTP requests of a new org race', async () => {
    const res = await t.call('POST', '/v1/orgs', {
      body: { name: 'Race', currency: 'EUR', timezone: 'America/New_York' },
    });
    const key = await t.call('POST', `/v1/orgs/${res.body.id}/api_keys`, { body: { name: 'k' } });
    const hold = {
      member: 'u1',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { credits: '1' },
    };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2
          ? t.call('GET', `/v1/orgs/${res.body.id}/balance`, { key: key.body.key })
          : t.call('POST', '/v1/authorizations', { key: key.body.key, body: hold }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    // Every hold saw the allowance: none was refused for want of credits.
    expect(answers.filter((a, i) => i % 2 === 0 && !a.body.approved)).toEqual([]);
    expect(await planGrants(res.body.id)).toHaveLength(1);
    expect(await checkLedger(t.db, res.body.id)).toEqual([]);
  });

  // A transaction that issued the grant may roll back: the next one must issue it again.
  it('issues the grant again after a transaction that ensured it rolled back', async () => {
    const ny = await org('America/New_York', '2026-01-08');
    const now = at('2026-03-08T05:00:00.000Z');
    await expect(
      t.db.transaction(async (tx) => {
        await ensurePlanGrant(tx, ny, now);
        throw new Error('the rest of the request failed');
      }),
    ).rejects.toThrow('the rest of the request failed');
    await t.db.transaction((tx) => ensurePlanGrant(tx, ny, now));
    await issuePlanGrants(t.db, now);
    expect(shown(await planGrants(ny.id)).map((g) => g.cycle_start)).toEqual(['2026-03-08T05:00:00.000Z']);
  });
});
