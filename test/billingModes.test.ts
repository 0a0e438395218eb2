/**
 * The billing modes besides credits: BYOM (the org's own model account, capped in USD at provider
 * cost) and BYOK (calls go straight to the org's provider key, untracked).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationSchema, CaptureSchema } from '../src/http/routes/authorizations.ts';
import { OrgSchema } from '../src/http/routes/orgs.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import {
  createOrgWithKey,
  freshIdempotencyKey,
  justNow,
  startTally,
  type TestTally,
} from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

// gpt-4o lists USD 10 per million output tokens: 1 000 output tokens cost USD 0.01 at provider cost.
const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };
const output = (n: number) => ({ input_tokens: 0, max_output_tokens: n });

describe('BYOM: a USD spend cap at provider cost', () => {
  it('shows the cycle spend in USD on the balance, with no credit run-out to project', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    const events = Array.from({ length: 3 }, (_, i) => ({
      ...call,
      id: `e${i}`,
      occurred_at: justNow(),
      usage: { output_tokens: 1_000 + i },
    }));
    const sent = await t.call('POST', '/v1/events', { key, body: { events } });
    expect(sent.body.results.map((r: { cost: string }) => r.cost)).toEqual(['0.01', '0.01001', '0.01002']);
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body).toMatchObject({ unit: 'usd', currency: 'USD', available_credits: '0' });
    expect(balance.body.cycle).toMatchObject({ spent_credits: '0.03003', run_out_in_days: null });
    expect(balance.body.cycle.runs_out_before_cycle_end).toBe(false);
  });

  it('projects the run-out to the monthly spend cap when the org has one', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, { body: { alert_threshold: null, allowed_limit: '1' } });
    const events = [{ ...call, id: 'e1', occurred_at: justNow(), usage: { output_tokens: 3_003 } }];
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).body.results[0].cost).toBe(
      '0.03003',
    );
    const { cycle } = (await t.call('GET', `/v1/orgs/${org.id}/balance`)).body;
    expect(cycle.spent_credits).toBe('0.03003');
    // USD 0.96997 left at USD 0.03003 over the days elapsed.
    const exact = (0.96997 * cycle.days_elapsed) / 0.03003;
    expect(Math.abs(cycle.run_out_in_days - exact)).toBeLessThanOrEqual(0.5);
    expect(cycle.runs_out_before_cycle_end).toBe(cycle.run_out_in_days <= cycle.days_remaining);
    expect(cycle.run_out_by).toBe('spend_cap');
  });

  it("projects a credits org's run-out to its allowed limit when the limit comes first, within the month", async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      plan_allowance_credits: '100000',
    });
    // 100 000 output tokens of gpt-4o: USD 1.50, 150 credits.
    const events = [{ ...call, id: 'c1', occurred_at: justNow(), usage: { output_tokens: 100_000 } }];
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).body.results[0].credits).toBe(
      '150',
    );
    const cycleNow = async () => (await t.call('GET', `/v1/orgs/${org.id}/balance`)).body.cycle;
    const byCredits = await cycleNow();
    expect(byCredits.run_out_by).toBe('credits');
    // USD 0.10 left before the allowed limit is 10 credits: gone long before the 99 850 credits.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: null, allowed_limit: '1.6' },
    });
    const cycle = await cycleNow();
    const byLimit = Math.round((10 * cycle.days_elapsed) / 150);
    const today = new Date();
    const monthDaysLeft =
      new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 1, 0)).getUTCDate() -
      today.getUTCDate();
    if (byLimit <= monthDaysLeft) {
      expect(cycle).toMatchObject({ run_out_by: 'allowed_limit', run_out_in_days: byLimit });
      expect(cycle.run_out_in_days).toBeLessThan(byCredits.run_out_in_days);
    } else expect(cycle.run_out_by).toBe('credits');
    // A limit far away leaves the credits first again.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: null, allowed_limit: '100000' },
    });
    expect(await cycleNow()).toMatchObject({
      run_out_by: 'credits',
      run_out_in_days: byCredits.run_out_in_days,
    });
  });

  it('holds within the cap, partly at its edge, and denies past it; captures count against it', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    const limits = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: null, allowed_limit: '0.02' },
    });
    expect(limits.body).toMatchObject({ basis: 'provider_cost', currency: 'USD' });
    const hold = (n: number) =>
      t.call('POST', '/v1/authorizations', { key, body: { ...call, estimate: output(n) } });
    const first = await hold(1_000);
    expect(AuthorizationSchema.parse(first.body)).toMatchObject({ approved: true, held_credits: '0.01' });
    const second = await hold(3_000);
    expect(second.body).toMatchObject({ approved: true, reason: 'partial', held_credits: '0.01' });
    const third = await hold(1);
    expect(third.body).toMatchObject({ approved: false, reason: 'quota_exceeded' });
    // 1 500 tokens on the first: its hold covers 0.01, the cap allows nothing past the second's hold.
    const captured = await t.call('POST', `/v1/authorizations/${first.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 1_500 } },
    });
    expect(CaptureSchema.parse(captured.body)).toMatchObject({
      credits: '0.01',
      cost: '0.01',
      currency: 'USD',
      unbilled_credits: '0.005',
    });
    await t.call('POST', `/v1/authorizations/${second.body.id}/void`, { key });
    const after = await t.call('GET', `/v1/orgs/${org.id}/limits`);
    expect(after.body).toMatchObject({ spent: '0.01', held: '0' });
    // No credits move for a BYOM org.
    const [entries] = await t.db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM ledger_entries WHERE org_id = $1',
      [org.id],
    );
    expect(entries!.n).toBe('0');
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});

describe("BYOK: calls on the org's own provider key, untracked", () => {
  it('refuses a limit or budget, which could never count anything, and still clears old ones', async () => {
    const { org, key } = await createOrgWithKey(t, { billing_mode: 'byok' });
    const limits = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: null, allowed_limit: '10' },
    });
    expect(limits.status).toBe(409);
    expect(limits.body).toMatchObject({ code: 'spend_not_tracked', param: 'allowed_limit' });
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Cap', scope: { kind: 'workspace', id: 'w' }, amount: '5', period: 'month' },
    });
    expect(budget.status).toBe(409);
    expect(budget.body).toMatchObject({ code: 'spend_not_tracked', param: 'amount' });
    expect((await t.db.query('SELECT 1 FROM budgets WHERE org_id = $1', [org.id])).length).toBe(0);
    const cleared = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: null, allowed_limit: null },
    });
    expect(cleared.status).toBe(200);
  });

  it('approves holds without holding or charging anything, and says why', async () => {
    const { org, key } = await createOrgWithKey(t, { billing_mode: 'byok' });
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: output(1_000) },
    });
    expect(AuthorizationSchema.parse(hold.body)).toMatchObject({
      approved: true,
      reason: 'byok_untracked',
      held_credits: '0',
    });
    const inc = await t.call('POST', `/v1/authorizations/${hold.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 500 } },
    });
    expect(inc.body).toMatchObject({ charged_credits: '0', action: 'continue' });
    const captured = await t.call('POST', `/v1/authorizations/${hold.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    expect(captured.body).toMatchObject({ status: 'captured', credits: '0', cost: '0' });
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body).toMatchObject({ tracking: 'unavailable', available_credits: '0' });
    expect(balance.body.notice).toContain('Tally cannot track their cost');
    // The call's tokens are still recorded, at no charge.
    const events = await t.db.query(
      'SELECT output_tokens::text, credits::text FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(events).toEqual([{ output_tokens: '1000', credits: '0' }]);
  });

  it('records the tokens a voided call streamed, at no charge', async () => {
    const { org, key } = await createOrgWithKey(t, { billing_mode: 'byok' });
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: output(1_000) },
    });
    await t.call('POST', `/v1/authorizations/${hold.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 500 } },
    });
    const voided = await t.call('POST', `/v1/authorizations/${hold.body.id}/void`, { key });
    expect(voided.body).toMatchObject({ status: 'voided', charged_credits: '0' });
    const events = await t.db.query(
      'SELECT id, output_tokens::text, credits::text FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(events).toEqual([{ id: hold.body.id, output_tokens: '500', credits: '0' }]);
  });
});

describe('changing billing terms', () => {
  it('is refused while the org has an active hold, which is then released in the mode it was placed in', async () => {
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' } },
    });
    expect(hold.body).toMatchObject({ approved: true });
    const refused = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { billing_mode: 'credits' } });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'holds_active', param: 'billing_mode' });
    // Settled as the BYOM hold it is: nothing was ever held in the credits ledger.
    const voided = await t.call('POST', `/v1/authorizations/${hold.body.id}/void`, { key });
    expect(voided.status).toBe(200);
    const changed = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { billing_mode: 'credits' } });
    expect(changed.status).toBe(200);
    expect(changed.body.billing_mode).toBe('credits');
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body).toMatchObject({ held_credits: '0', available_credits: '500' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('refuses a move between credits and BYOM once the org has spent in one, even by way of BYOK', async () => {
    const { org, key } = await createOrgWithKey(t, { currency: 'EUR', timezone: 'UTC' });
    const patch = (billing_mode: string) => t.call('PATCH', `/v1/orgs/${org.id}`, { body: { billing_mode } });
    // No usage yet: the mode is still the operator's to choose.
    expect((await patch('byom')).status).toBe(200);
    expect((await patch('credits')).status).toBe(200);
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: { events: [{ ...call, id: 'u1', occurred_at: justNow(), usage: { output_tokens: 1_000 } }] },
    });
    expect(sent.body.results[0]).toMatchObject({ status: 'accepted', currency: 'EUR' });
    const refused = await patch('byom');
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'usage_recorded', param: 'billing_mode' });
    expect(refused.body.detail).toContain('credits in EUR');
    // Refused whole: nothing else of the request changed either.
    const both = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      body: { billing_mode: 'byom', name: 'Renamed' },
    });
    expect(both.status).toBe(409);
    expect((await t.call('GET', `/v1/orgs/${org.id}`)).body).toMatchObject({
      billing_mode: 'credits',
      name: 'Acme',
    });
    // BYOK spends nothing: the org may go there and come back, but not on to BYOM.
    expect((await patch('byok')).status).toBe(200);
    expect((await patch('byom')).status).toBe(409);
    expect((await patch('credits')).status).toBe(200);
    // And the other way: a BYOM org that spent stays out of credits.
    const byom = await createOrgWithKey(t, { currency: 'EUR', timezone: 'UTC', billing_mode: 'byom' });
    await t.call('POST', '/v1/events', {
      key: byom.key,
      body: { events: [{ ...call, id: 'm1', occurred_at: justNow(), usage: { output_tokens: 1_000 } }] },
    });
    const toCredits = await t.call('PATCH', `/v1/orgs/${byom.org.id}`, { body: { billing_mode: 'credits' } });
    expect(toCredits.status).toBe(409);
    expect(toCredits.body.detail).toContain('USD at provider cost');
  });

  it("keeps the month's spend against the limit when the operator moves the time zone; the tenant may not", async () => {
    const { org, key } = await createOrgWithKey(t, { currency: 'USD', timezone: 'Europe/Berlin' });
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, { body: { alert_threshold: null, allowed_limit: '1' } });
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [{ ...call, id: 'big', occurred_at: justNow(), usage: { output_tokens: 100_000 } }],
      },
    });
    expect(sent.body.results[0]).toMatchObject({ status: 'accepted', cost: '1.5' });
    const byTenant = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      key,
      body: { timezone: 'Pacific/Kiritimati' },
    });
    expect(byTenant.status).toBe(403);
    expect(byTenant.body).toMatchObject({ param: 'timezone' });
    const hold = () =>
      t.call('POST', '/v1/authorizations', { key, body: { ...call, estimate: { credits: '1' } } });
    const refused = await hold();
    expect(refused.body).toMatchObject({ approved: false, reason: 'quota_exceeded' });
    const moved = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { timezone: 'Pacific/Kiritimati' } });
    expect(moved.status).toBe(200);
    const limits = await t.call('GET', `/v1/orgs/${org.id}/limits`, { key });
    expect(limits.body).toMatchObject({ spent: '1.5' });
    expect((await hold()).body).toMatchObject({ approved: false, reason: 'quota_exceeded' });
  });

  it('refuses to move the time zone or the anchor while a hold is active', async () => {
    const { org, key } = await createOrgWithKey(t);
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '1' } },
    });
    expect(hold.body).toMatchObject({ approved: true });
    for (const body of [{ timezone: 'Asia/Tokyo' }, { billing_cycle_anchor: '2026-01-15' }]) {
      const refused = await t.call('PATCH', `/v1/orgs/${org.id}`, { body });
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ code: 'holds_active', param: Object.keys(body)[0] });
    }
  });
});

describe("the activity log's model column", () => {
  it("is on by default and the operator's to set, a boolean only", async () => {
    const { org, key } = await createOrgWithKey(t);
    expect(OrgSchema.strict().parse(org).activity_shows_model).toBe(true);
    const hidden = await t.call('POST', '/v1/orgs', {
      body: { name: 'Quiet', currency: 'EUR', timezone: 'UTC', activity_shows_model: false },
    });
    expect(hidden.status).toBe(201);
    expect(hidden.body.activity_shows_model).toBe(false);
    // The host's choice for its product: the tenant's own key may not turn it back.
    const tenant = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      key,
      body: { activity_shows_model: false },
    });
    expect(tenant.status).toBe(403);
    expect(tenant.body.param).toBe('activity_shows_model');
    const off = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { activity_shows_model: false } });
    expect(off.status).toBe(200);
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).body.activity_shows_model).toBe(false);
    const bad = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { activity_shows_model: 'no' } });
    expect(bad.status).toBe(422);
    expect(bad.body.param).toBe('activity_shows_model');
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).body.activity_shows_model).toBe(false);
  });
});

describe('the free tier flag', () => {
  it("is on for an org created with the default allowance, off with a plan of its own, and the operator's to set", async () => {
    const { org, key } = await createOrgWithKey(t);
    expect(OrgSchema.strict().parse(org).free_tier).toBe(true);
    const paid = await t.call('POST', '/v1/orgs', {
      body: { name: 'Pro', currency: 'EUR', timezone: 'UTC', plan_allowance_credits: '5000' },
    });
    expect(paid.status).toBe(201);
    expect(paid.body.free_tier).toBe(false);
    const said = await t.call('POST', '/v1/orgs', {
      body: {
        name: 'Trial',
        currency: 'USD',
        timezone: 'UTC',
        plan_allowance_credits: '100',
        free_tier: true,
      },
    });
    expect(said.body.free_tier).toBe(true);
    // Which plan a tenant is on is the host's to say: its own key may not leave the free tier.
    const tenant = await t.call('PATCH', `/v1/orgs/${org.id}`, { key, body: { free_tier: false } });
    expect(tenant.status).toBe(403);
    expect(tenant.body.param).toBe('free_tier');
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).body.free_tier).toBe(true);
    const upgraded = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { free_tier: false } });
    expect(upgraded.status).toBe(200);
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).body.free_tier).toBe(false);
    const bad = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { free_tier: 'yes' } });
    expect(bad.status).toBe(422);
    expect(bad.body.param).toBe('free_tier');
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).body.free_tier).toBe(false);
  });
});
