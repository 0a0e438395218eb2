import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertSchema } from '../src/http/routes/alerts.ts';
import { pageOf } from '../src/http/schemas.ts';
import { checkProjectedRunOut } from '../src/services/alerts/checkProjectedRunOut.ts';
import { forgetKnownAlerts } from '../src/services/alerts/recordAlerts.ts';
import type { Ctx } from '../src/services/context.ts';
import {
  createOrgWithKey,
  freshIdempotencyKey,
  justNow,
  onServer,
  type Response,
  startTally,
  type TestTally,
} from './support/harness.ts';

let t: TestTally;
let jobs: Ctx;
beforeAll(async () => {
  t = await startTally();
  jobs = { ...t, principal: { kind: 'operator', id: 'op_jobs' }, requestId: 'test' };
});
afterAll(() => t.close());

const AlertPage = pageOf(AlertSchema);

// gpt-4o at 1.5 x markup and EUR 0.92 / USD, 1 credit = EUR 0.01:
// 10 000 output tokens = 13.8 credits = EUR 0.138, the unit every test here spends in.
let eventNo = 0;
function spend(key: string, count: number, extra: Record<string, unknown> = {}) {
  return t.call('POST', '/v1/events', {
    key,
    body: {
      events: Array.from({ length: count }, () => ({
        id: `spend-${++eventNo}`,
        member: 'u1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: justNow(),
        usage: { output_tokens: 10_000 },
        ...extra,
      })),
    },
  });
}

async function alertsOf(orgId: string, key?: string) {
  const res = await t.call('GET', `/v1/orgs/${orgId}/alerts?limit=100`, key ? { key } : {});
  expect(res.status).toBe(200);
  return AlertPage.parse(res.body).data;
}
const summary = (alerts: { type: string; scope: string; threshold_percent: number }[]) =>
  alerts.map((a) => `${a.type} ${a.scope} ${a.threshold_percent}`);

async function setLimits(orgId: string, key: string, alert: string | null, limit: string | null) {
  const res = await t.call('PUT', `/v1/orgs/${orgId}/limits`, {
    key,
    body: { alert_threshold: alert, allowed_limit: limit },
  });
  expect(res.status).toBe(200);
}

describe('alerts: happy path', () => {
  it('fires the alert threshold and 75/90/95/100 % of the monthly limit, each once per period', async () => {
    const { org, key } = await createOrgWithKey(t);
    // Limit EUR 1.38 = 10 events; alert threshold EUR 0.69 = 5 events.
    await setLimits(org.id, key, '0.69', '1.38');
    await spend(key, 4);
    expect(await alertsOf(org.id)).toEqual([]);
    await spend(key, 1);
    expect(summary(await alertsOf(org.id))).toEqual(['alert.threshold_crossed alert_threshold 100']);
    await spend(key, 3); // 80 %
    const [first75] = await alertsOf(org.id);
    expect(first75).toMatchObject({
      type: 'alert.threshold_crossed',
      scope: 'monthly_limit',
      threshold_percent: 75,
      details: {
        scope_kind: 'monthly_limit',
        currency: 'EUR',
        spent_amount: '1.104',
        limit_amount: '1.38',
        spent_credits: '110.4',
        limit_credits: '138',
      },
    });

    // Raised: 8 of 20 events is 40 %; crossing 75 % again in the same month fires nothing new, even
    // when this process forgets what it saw (the database's unique key keeps it once).
    await setLimits(org.id, key, '0.69', '2.76');
    forgetKnownAlerts();
    await spend(key, 8); // 16 of 20: 80 %
    expect((await alertsOf(org.id)).filter((a) => a.threshold_percent === 75)).toHaveLength(1);
    await spend(key, 2); // 90 %
    await spend(key, 1); // 95 %
    await spend(key, 1); // 100 %
    await spend(key, 1); // past the limit: nothing new
    expect(summary(await alertsOf(org.id))).toEqual([
      'quota.exceeded monthly_limit 100',
      'alert.threshold_crossed monthly_limit 100',
      'alert.threshold_crossed monthly_limit 95',
      'alert.threshold_crossed monthly_limit 90',
      'alert.threshold_crossed monthly_limit 75',
      'alert.threshold_crossed alert_threshold 100',
    ]);
    // Every alert went into the webhook outbox with it, once.
    const messages = await t.db.query<{ type: string; alert_id: string }>(
      `SELECT type, payload->'data'->>'id' AS alert_id FROM webhook_messages WHERE org_id = $1 AND type <> 'grant.created'`,
      [org.id],
    );
    const alerts = await alertsOf(org.id);
    expect(messages.map((m) => m.alert_id).sort()).toEqual(alerts.map((a) => a.id).sort());
  });

  it('fires at once when a threshold or limit is set under what the month has spent, once', async () => {
    const { org, key } = await createOrgWithKey(t);
    await spend(key, 5); // EUR 0.69
    expect(await alertsOf(org.id)).toEqual([]);
    await setLimits(org.id, key, '0.5', '0.6');
    expect(summary(await alertsOf(org.id)).sort()).toEqual(
      [
        'alert.threshold_crossed alert_threshold 100',
        'alert.threshold_crossed monthly_limit 75',
        'alert.threshold_crossed monthly_limit 90',
        'alert.threshold_crossed monthly_limit 95',
        'alert.threshold_crossed monthly_limit 100',
        'quota.exceeded monthly_limit 100',
      ].sort(),
    );
    // Set again, or raised past the spend: nothing new.
    await setLimits(org.id, key, '0.5', '0.6');
    await setLimits(org.id, key, '5', '6');
    expect(await alertsOf(org.id)).toHaveLength(6);
  });

  it("names how far a budget's spend has gone at the shares its alerts fire: warning, caution, critical", async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, { key, body: { external_id: 'lv' } });
    // One event of 0.138: 69, 76.7, 92 and 95.2 % of these amounts.
    const amounts = ['0.2', '0.18', '0.15', '0.145'];
    for (const amount of amounts) {
      const created = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
        key,
        body: {
          name: `At ${amount}`,
          scope: { kind: 'member', id: member.body.id },
          amount,
          enforcement: 'soft',
        },
      });
      expect(created.status).toBe(201);
    }
    await spend(key, 1, { member: 'lv' });
    const listed = (await t.call('GET', `/v1/orgs/${org.id}/budgets`, { key })).body.data as {
      amount: string;
      current_period: { spent: string; status: string };
    }[];
    const byAmount = Object.fromEntries(listed.map((b) => [b.amount, b.current_period]));
    expect(amounts.map((a) => byAmount[a])).toEqual(
      ['ok', 'warning', 'caution', 'critical'].map((status) =>
        expect.objectContaining({ spent: '0.138', status }),
      ),
    );
  });

  it('fires per budget, and quota.exceeded only for a hard one', async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, { key, body: { external_id: 'b1' } });
    const budget = (name: string, enforcement: string) =>
      t.call('POST', `/v1/orgs/${org.id}/budgets`, {
        key,
        body: { name, scope: { kind: 'member', id: member.body.id }, amount: '0.552', enforcement },
      });
    const hard = (await budget('Hard cap', 'hard')).body;
    const soft = (await budget('Soft cap', 'soft')).body;
    expect(hard.current_period).toMatchObject({ spent: '0', held: '0', remaining: '0.552', status: 'ok' });
    const current = async () =>
      (await t.call('GET', `/v1/orgs/${org.id}/budgets`, { key })).body.data.map(
        (b: { current_period: unknown }) => b.current_period,
      );
    await spend(key, 3, { member: 'b1' }); // 3 of 4 events: 75 %
    await spend(key, 3, { member: 'u1' }); // another member: counted in no budget
    expect(summary(await alertsOf(org.id)).sort()).toEqual(
      [`alert.threshold_crossed budget:${hard.id} 75`, `alert.threshold_crossed budget:${soft.id} 75`].sort(),
    );
    for (const period of await current()) {
      expect(period).toMatchObject({ spent: '0.414', held: '0', remaining: '0.138', status: 'warning' });
    }
    await spend(key, 1, { member: 'b1' }); // 100 %, past 90 and 95 on the way
    for (const period of await current()) {
      expect(period).toMatchObject({ spent: '0.552', remaining: '0', status: 'exceeded' });
    }
    const alerts = await alertsOf(org.id);
    expect(summary(alerts).sort()).toEqual(
      [
        ...[75, 90, 95, 100].flatMap((p) => [
          `alert.threshold_crossed budget:${hard.id} ${p}`,
          `alert.threshold_crossed budget:${soft.id} ${p}`,
        ]),
        `quota.exceeded budget:${hard.id} 100`,
      ].sort(),
    );
    expect(alerts.find((a) => a.type === 'quota.exceeded')!.details).toMatchObject({
      scope_kind: 'budget',
      budget_id: hard.id,
      name: 'Hard cap',
      reason: 'budget_exceeded',
    });
  });

  it('fires on the plan allowance and credits.low, and every percentage a jump passes', async () => {
    const { org, key } = await createOrgWithKey(t);
    // 500 plan credits; 28 events = 386.4 credits = 77.3 %.
    await spend(key, 28);
    expect(summary(await alertsOf(org.id))).toEqual(['alert.threshold_crossed plan_allowance 75']);
    // 32 events = 441.6 (88.3 %): still 75 %, 58.4 available.
    await spend(key, 4);
    expect(await alertsOf(org.id)).toHaveLength(1);
    // 33 events = 455.4 (91 %): 90 %, and 44.6 available is under 10 % of the allowance.
    await spend(key, 1);
    const low = await alertsOf(org.id);
    expect(summary(low)).toEqual([
      'credits.low credits 10',
      'alert.threshold_crossed plan_allowance 90',
      'alert.threshold_crossed plan_allowance 75',
    ]);
    expect(low[0]!.details).toMatchObject({
      available_credits: '44.6',
      overage_credits: '0',
      plan_allowance_credits: '500',
      threshold_credits: '50',
    });
    // 34 = 469.2 (93.8 %): nothing new; 37 = 510.6: past the allowance, and past 95 % on the way.
    await spend(key, 1);
    await spend(key, 3);
    const alerts = await alertsOf(org.id);
    expect(summary(alerts)).toEqual([
      'alert.threshold_crossed plan_allowance 100',
      'alert.threshold_crossed plan_allowance 95',
      'credits.low credits 10',
      'alert.threshold_crossed plan_allowance 90',
      'alert.threshold_crossed plan_allowance 75',
    ]);
    expect(alerts[0]!.details).toMatchObject({ allowance_credits: '500', used_credits: '500' });
  });

  it('fires credits.low for a prepaid org without a plan allowance, against its active grants', async () => {
    const { org, key } = await createOrgWithKey(t, { plan_allowance_credits: '0' });
    const topup = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'topup', amount_credits: '100', source: 'operator' },
    });
    expect(topup.status, JSON.stringify(topup.body)).toBe(201);
    // 6 events = 82.8 of 100: 17.2 left, not low.
    await spend(key, 6);
    expect(await alertsOf(org.id)).toEqual([]);
    // 7 = 96.6: 3.4 left, under 10 % of the 100 bought.
    await spend(key, 1);
    const [low] = await alertsOf(org.id);
    expect(summary([low!])).toEqual(['credits.low credits 10']);
    expect(low!.details).toMatchObject({
      available_credits: '3.4',
      basis: 'active_grants',
      plan_allowance_credits: '0',
      reference_credits: '100',
      threshold_credits: '10',
    });
  });

  it('fires credits.low when one charge empties every grant at once', async () => {
    const { org, key } = await createOrgWithKey(t, { plan_allowance_credits: '0' });
    await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'topup', amount_credits: '10', source: 'operator' },
    });
    await spend(key, 1); // 13.8 credits: 10 drawn, 3.8 overage
    const alerts = await alertsOf(org.id);
    expect(summary(alerts)).toEqual(['credits.low credits 10']);
    expect(alerts[0]!.details).toMatchObject({ available_credits: '0', overage_credits: '3.8' });
  });

  it('fires no credits.low for an org that has no grant to run low on', async () => {
    const { org, key } = await createOrgWithKey(t, { plan_allowance_credits: '0' });
    await spend(key, 1);
    expect(await alertsOf(org.id)).toEqual([]);
  });

  it('fires quota.exceeded when a hold is denied, and from increments billed under a hold', async () => {
    const { org, key } = await createOrgWithKey(t);
    await setLimits(org.id, key, null, '0.1'); // 10 credits
    const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '8' } },
    });
    expect(hold.body.approved).toBe(true);
    // 6 000 output tokens = 8.28 credits: 8 from the hold, 0.28 from free room; 82.8 % of the limit.
    await t.call('POST', `/v1/authorizations/${hold.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 6_000 } },
    });
    expect(summary(await alertsOf(org.id))).toEqual(['alert.threshold_crossed monthly_limit 75']);

    const other = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '2' } },
    });
    expect(other.body).toMatchObject({ approved: true, held_credits: '1.72' });
    for (let i = 0; i < 3; i++) {
      const denied = await t.call('POST', '/v1/authorizations', {
        key,
        body: { ...call, feature: 'Search', estimate: { credits: '1' } },
      });
      expect(denied.body).toMatchObject({ approved: false, reason: 'quota_exceeded' });
    }
    const alerts = await alertsOf(org.id);
    expect(summary(alerts)).toEqual([
      'quota.exceeded monthly_limit 100',
      'alert.threshold_crossed monthly_limit 75',
    ]);
    expect(alerts[0]!.details).toMatchObject({
      reason: 'quota_exceeded',
      spent_credits: '8.28',
      held_credits: '1.72',
      limit_credits: '10',
      denied: { member: 'u1', feature: 'Search', requested_credits: '1' },
    });
  });

  it('projects the run-out in a job, once per cycle however often it runs', async () => {
    const fast = await createOrgWithKey(t);
    const slow = await createOrgWithKey(t);
    await spend(fast.key, 37); // 510.6 credits on the first day: nothing left
    await t.call('POST', '/v1/events', {
      key: slow.key,
      body: {
        events: [
          {
            id: 'slow-1',
            member: 'u1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: justNow(),
            usage: { input_tokens: 1_000 },
          },
        ],
      },
    });
    await checkProjectedRunOut(jobs);
    forgetKnownAlerts();
    await Promise.all([checkProjectedRunOut(jobs), checkProjectedRunOut(jobs)]);
    const fired = (await alertsOf(fast.org.id)).filter((a) => a.type === 'credits.projected_run_out');
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      scope: 'credits',
      details: { available_credits: '0', run_out_in_days: 0 },
    });
    expect(await alertsOf(slow.org.id)).toEqual([]);
  });
});

describe('alerts: errors', () => {
  it('refuses a bad cursor, an unknown type and an unknown org', async () => {
    const { org, key } = await createOrgWithKey(t);
    const cursor = await t.call('GET', `/v1/orgs/${org.id}/alerts?cursor=nope`, { key });
    expect(cursor.status).toBe(400);
    expect(cursor.body.param).toBe('cursor');
    const type = await t.call('GET', `/v1/orgs/${org.id}/alerts?type=credits.lots`, { key });
    expect(type.status).toBe(400);
    expect(type.body.param).toBe('type');
    const missing = await t.call('GET', '/v1/orgs/org_missing/alerts');
    expect(missing.status).toBe(404);
  });

  it('pages newest first and filters by type', async () => {
    const { org, key } = await createOrgWithKey(t);
    await setLimits(org.id, key, '0.138', '1.38');
    await spend(key, 1);
    await spend(key, 7); // 80 %
    await spend(key, 2); // 100 % and quota.exceeded
    const paged: Parameters<typeof summary>[0] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Response = await t.call(
        'GET',
        `/v1/orgs/${org.id}/alerts?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        {
          key,
        },
      );
      paged.push(...page.body.data);
      cursor = page.body.next_cursor;
      expect(page.body.has_more).toBe(cursor !== null);
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThan(2);
    expect(summary(paged)).toEqual(summary(await alertsOf(org.id)));
    const quota = await t.call('GET', `/v1/orgs/${org.id}/alerts?type=quota.exceeded`, { key });
    expect(summary(quota.body.data)).toEqual(['quota.exceeded monthly_limit 100']);
  });
});

describe('alerts: security', () => {
  it("hides an org's alerts from another org's key (404) and lets a viewer read its own", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    await setLimits(a.org.id, a.key, '0.138', null);
    await spend(a.key, 1);
    const foreign = await t.call('GET', `/v1/orgs/${a.org.id}/alerts`, { key: b.key });
    expect(foreign.status).toBe(404);
    expect(JSON.stringify(foreign.body)).not.toContain('alert_threshold');
    expect(await alertsOf(b.org.id, b.key)).toEqual([]);
    const viewer = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      body: { name: 'viewer', role: 'viewer' },
    });
    expect(summary(await alertsOf(a.org.id, viewer.body.key))).toEqual([
      'alert.threshold_crossed alert_threshold 100',
    ]);
  });
});

describe.runIf(onServer)('alerts: concurrency on the server', () => {
  it('concurrent batches crossing one threshold store one alert and one message', async () => {
    const { org, key } = await createOrgWithKey(t);
    await setLimits(org.id, key, null, '13.8'); // 100 events
    forgetKnownAlerts();
    // 10 batches of 8 events at once: 80 events, 80 %.
    await Promise.all(Array.from({ length: 10 }, () => spend(key, 8)));
    const limitAlerts = summary(await alertsOf(org.id)).filter((s) => s.includes('monthly_limit'));
    expect(limitAlerts).toEqual(['alert.threshold_crossed monthly_limit 75']);
    const rows = await t.db.query(
      `SELECT 1 FROM webhook_messages WHERE org_id = $1 AND payload->'data'->>'scope' = 'monthly_limit'`,
      [org.id],
    );
    expect(rows).toHaveLength(1);
  });
});
