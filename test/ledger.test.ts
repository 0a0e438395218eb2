import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BalanceSchema, GrantSchema } from '../src/http/routes/ledger.ts';
import { LimitsSchema } from '../src/http/routes/limits.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { createOrgWithKey, justNow, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

// gpt-4o: $2.50 / $10 per million tokens; 1.5 markup; 1 USD = 0.92 EUR; 1 credit = EUR 0.01.
// 100 000 input + 50 000 output = $0.25 + $0.50 = $0.75 -> EUR 1.035 -> 103.5 credits.
const chat = (id: string) => ({
  id,
  member: 'u1',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: justNow(),
  usage: { input_tokens: 100_000, output_tokens: 50_000 },
});

describe('ledger: happy path', () => {
  it('issues the plan allowance once and draws plan first, then bonus, then into overage', async () => {
    const { org, key } = await createOrgWithKey(t);
    const bonus = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'bonus', amount_credits: '100' },
    });
    expect(bonus.status).toBe(201);
    GrantSchema.parse(bonus.body);

    const sent = await t.call('POST', '/v1/events', {
      key,
      body: { events: [1, 2, 3, 4, 5].map((n) => chat(`c${n}`)) },
    });
    expect(sent.body.results.map((r: any) => r.credits)).toEqual([
      '103.5',
      '103.5',
      '103.5',
      '103.5',
      '103.5',
    ]);

    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`, { key });
    expect(balance.status).toBe(200);
    BalanceSchema.parse(balance.body);
    // 517.5 spent: 500 plan, then 17.5 of the 100 bonus.
    expect(balance.body.monthly).toEqual({
      granted_credits: '500',
      used_credits: '500',
      remaining_credits: '0',
    });
    expect(balance.body.bonus).toEqual({
      granted_credits: '100',
      used_credits: '17.5',
      remaining_credits: '82.5',
    });
    expect(balance.body.available_credits).toBe('82.5');

    await t.call('POST', '/v1/events', { key, body: { events: [chat('c6')] } });
    const after = await t.call('GET', `/v1/orgs/${org.id}/balance`, { key });
    expect(after.body.available_credits).toBe('0');
    expect(after.body.overage_credits).toBe('21');

    // A new grant pays off the overage first.
    await t.call('POST', `/v1/orgs/${org.id}/grants`, { body: { kind: 'topup', amount_credits: '50' } });
    const paid = await t.call('GET', `/v1/orgs/${org.id}/balance`, { key });
    expect(paid.body.overage_credits).toBe('0');
    expect(paid.body.available_credits).toBe('29');
    expect(await checkLedger(t.db, org.id)).toEqual([]);

    // c5 straddles the end of the plan allowance: each grant it drew from is traceable.
    const ledger = await t.call('GET', `/v1/orgs/${org.id}/ledger?event=c5`, { key });
    const grants = await t.call('GET', `/v1/orgs/${org.id}/grants`, { key });
    const idOf = (kind: string) => grants.body.data.find((g: any) => g.kind === kind).id;
    expect(ledger.body.data.map((e: any) => [e.kind, e.grant_id, e.amount_credits])).toEqual([
      ['debit', idOf('bonus'), '-17.5'],
      ['debit', idOf('plan'), '-86'],
    ]);
  });

  it('voids what is left of a grant', async () => {
    const { org } = await createOrgWithKey(t);
    const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'promo', amount_credits: '10' },
    });
    const voided = await t.call('POST', `/v1/orgs/${org.id}/grants/${grant.body.id}/void`, { body: {} });
    expect(voided.body).toMatchObject({ status: 'voided', expired_credits: '10', remaining_credits: '0' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('takes part of a grant back as a correction, and refuses more than is left', async () => {
    const { org } = await createOrgWithKey(t);
    const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'topup', amount_credits: '100' },
    });
    const void_ = (body: Record<string, unknown>) =>
      t.call('POST', `/v1/orgs/${org.id}/grants/${grant.body.id}/void`, { body });
    const reduced = await void_({ amount_credits: '30.5', reason: 'Double-granted by support' });
    expect(reduced.status, JSON.stringify(reduced.body)).toBe(200);
    expect(reduced.body).toMatchObject({
      status: 'active',
      expired_credits: '30.5',
      remaining_credits: '69.5',
    });
    const tooMuch = await void_({ amount_credits: '69.500001' });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body).toMatchObject({ param: 'amount_credits' });
    expect(tooMuch.body.detail).toContain('69.5');
    for (const amount of ['0', '-1', '1.0000001', 'ten']) {
      const bad = await void_({ amount_credits: amount });
      expect(bad.status, amount).toBe(422);
      expect(bad.body.param).toBe('amount_credits');
    }
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body).toMatchObject({ available_credits: '569.5', expired_credits: '30.5' });
    const entries = await t.call('GET', `/v1/orgs/${org.id}/ledger?grant=${grant.body.id}`);
    expect(entries.body.data.map((e: any) => [e.kind, e.amount_credits, e.memo])).toEqual([
      ['void', '-30.5', 'Double-granted by support'],
      ['grant', '100', 'topup grant'],
    ]);
    // The rest, voided as usual.
    const rest = await void_({});
    expect(rest.body).toMatchObject({ status: 'voided', expired_credits: '100', remaining_credits: '0' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('keeps limits with threshold <= limit', async () => {
    const { org, key } = await createOrgWithKey(t);
    const bad = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '20', allowed_limit: '10' },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.param).toBe('alert_threshold');
    const ok = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '1', allowed_limit: '2' },
    });
    expect(ok.status).toBe(200);
    LimitsSchema.parse(ok.body);
    await t.call('POST', '/v1/events', { key, body: { events: [chat('l1')] } });
    const limits = await t.call('GET', `/v1/orgs/${org.id}/limits`, { key });
    expect(limits.body).toMatchObject({ spent: '1.035', status: 'alert' });
  });
});

describe('ledger: plan rollover', () => {
  /** Ends the cycle of the org's plan grant now (as if its cycle end had passed) and reads the balance. */
  async function endCycle(orgId: string) {
    await t.db.query(
      "UPDATE grants SET expires_at = now() - interval '1 second' WHERE org_id = $1 AND kind = 'plan'",
      [orgId],
    );
    return (await t.call('GET', `/v1/orgs/${orgId}/balance`)).body;
  }

  it('carries unused plan credits into the next cycle up to the maximum, exactly once', async () => {
    const { org, key } = await createOrgWithKey(t, { plan_rollover_max_credits: '100' });
    expect(org.plan_rollover_max_credits).toBe('100');
    await t.call('POST', '/v1/events', { key, body: { events: [chat('r1'), chat('r2'), chat('r3')] } });
    // 310.5 of the 500 used: 189.5 unused, of which 100 roll over.
    const after = await endCycle(org.id);
    expect(after.available_credits).toBe('100');
    const grants = (await t.call('GET', `/v1/orgs/${org.id}/grants`)).body.data;
    const rolled = grants.filter((g: { source: string }) => g.source === 'rollover');
    expect(rolled).toHaveLength(1);
    expect(rolled[0]).toMatchObject({ kind: 'bonus', amount_credits: '100', remaining_credits: '100' });
    // It lasts to the end of the cycle that follows the one that ended.
    expect(Date.parse(rolled[0].expires_at)).toBeGreaterThan(Date.now());
    const plan = grants.find((g: { kind: string }) => g.kind === 'plan');
    expect(plan).toMatchObject({ status: 'expired', expired_credits: '189.5' });
    // Read again, expired again by the job: nothing more rolls over.
    await t.call('GET', `/v1/orgs/${org.id}/balance`);
    const again = (await t.call('GET', `/v1/orgs/${org.id}/grants`)).body.data;
    expect(again.filter((g: { source: string }) => g.source === 'rollover')).toHaveLength(1);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('carries all of a smaller remainder, and nothing by default', async () => {
    const generous = await createOrgWithKey(t, { plan_rollover_max_credits: '1000' });
    await t.call('POST', '/v1/events', { key: generous.key, body: { events: [chat('g1')] } });
    expect((await endCycle(generous.org.id)).available_credits).toBe('396.5');
    const none = await createOrgWithKey(t);
    expect(none.org.plan_rollover_max_credits).toBe('0');
    await t.call('POST', '/v1/events', { key: none.key, body: { events: [chat('n1')] } });
    expect((await endCycle(none.org.id)).available_credits).toBe('0');
    expect(await checkLedger(t.db, generous.org.id)).toEqual([]);
  });

  it("is the operator's to set", async () => {
    const { org, key } = await createOrgWithKey(t);
    const refused = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      key,
      body: { plan_rollover_max_credits: '50' },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.param).toBe('plan_rollover_max_credits');
    const set = await t.call('PATCH', `/v1/orgs/${org.id}`, { body: { plan_rollover_max_credits: '50' } });
    expect(set.body.plan_rollover_max_credits).toBe('50');
  });
});

describe('ledger: errors and security', () => {
  it('refuses grants from org keys and plan grants from anyone', async () => {
    const { org, key } = await createOrgWithKey(t);
    expect(
      (
        await t.call('POST', `/v1/orgs/${org.id}/grants`, {
          key,
          body: { kind: 'bonus', amount_credits: '5' },
        })
      ).status,
    ).toBe(403);
    const plan = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'plan', amount_credits: '5' },
    });
    expect(plan.status).toBe(422);
    expect(plan.body.param).toBe('kind');
  });
});

describe('grant pages', () => {
  it('page through grants created within one millisecond without skipping any', async () => {
    const { org, key } = await createOrgWithKey(t);
    for (const amount of ['1', '2', '3']) {
      const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
        body: { kind: 'bonus', amount_credits: amount },
      });
      expect(grant.status).toBe(201);
    }
    // As a plan grant and its rollover written by one transaction are: apart by microseconds only.
    await t.db.query(
      `UPDATE grants g SET created_at = '2026-12-01T00:00:00.000Z'::timestamptz + x.n * interval '1 microsecond'
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM grants WHERE org_id = $1) AS x
        WHERE g.org_id = $1 AND g.id = x.id`,
      [org.id],
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const page = await t.call('GET', `/v1/orgs/${org.id}/grants?limit=1${query}`, { key });
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((g: { id: string }) => g.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    const all = await t.db.query<{ id: string }>('SELECT id FROM grants WHERE org_id = $1', [org.id]);
    expect(seen.sort()).toEqual(all.map((g) => g.id).sort());
    expect(new Set(seen).size).toBe(seen.length);
  });
});
