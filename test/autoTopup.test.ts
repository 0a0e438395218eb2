/**
 * Automatic top-up: below the threshold it buys up to the target, never past the monthly cap, one
 * purchase in flight per org; with Stripe it charges the card a checkout saved (off-session, one
 * idempotency key per payment, so a retry after a server error charges once); a declined card turns
 * it off and sends auto_topup.failed. The job verb runs directly, as the scheduler would run it.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import { AutoTopupSchema } from '../src/http/routes/payments.ts';
import type { Ctx } from '../src/services/context.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { runAutoTopups } from '../src/services/payments/runAutoTopups.ts';
import { type FakeStripe, startFakeStripe, stripeEvent } from './support/fakeStripe.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

const micro = (s: string) => decimalUnits(s, 6);
const jobCtx = (t: TestTally): Ctx => ({
  db: t.db,
  config: t.config,
  prices: t.prices,
  principal: { kind: 'operator', id: 'job' },
  requestId: 'job',
});

let spent = 0;
/** Spends with one gpt-4o event: about 1.38 credits per 1 000 output tokens here (EUR, 1.5x markup). */
async function spend(t: TestTally, key: string, outputTokens: number) {
  const r = await t.call('POST', '/v1/events', {
    key,
    body: {
      events: [
        {
          id: `spend-${++spent}`,
          member: 'ana',
          feature: 'chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: minutesAgo(1),
          usage: { input_tokens: 1000, output_tokens: outputTokens },
        },
      ],
    },
  });
  expect(r.body.results[0].status).toBe('accepted');
}

async function availableCredits(t: TestTally, orgId: string) {
  return micro((await t.call('GET', `/v1/orgs/${orgId}/balance`)).body.available_credits);
}

const autoPayments = (t: TestTally, orgId: string) =>
  t.db.query<{ id: string; status: string; amount: string; failure_reason: string | null }>(
    `SELECT id, status, amount::text AS amount, failure_reason FROM payments
      WHERE org_id = $1 AND kind = 'auto_topup' ORDER BY created_at, id`,
    [orgId],
  );

describe('automatic top-up with the local provider', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally();
  });
  afterAll(() => t.close());

  it('buys up to the target below the threshold, once however often the job runs, within the monthly cap', async () => {
    const { org, key } = await createOrgWithKey(t);
    const set = await t.call('PUT', `/v1/orgs/${org.id}/auto_topup`, {
      key,
      body: { enabled: true, threshold_credits: '100', target_credits: '1000', monthly_cap: '25' },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(AutoTopupSchema.parse(set.body)).toMatchObject({ enabled: true, payment_method: 'local' });

    // Above the threshold (the 500-credit plan allowance): nothing to buy.
    expect(await runAutoTopups(jobCtx(t))).toEqual({ started: 0, completed: 0, failed: 0, pending: 0 });
    await spend(t, key, 320_000); // about 440 of the 500 plan credits
    const before = await availableCredits(t, org.id);
    expect(before).toBeLessThan(100_000_000n);

    // Two runs at once (two processes, say) buy once.
    const runs = await Promise.all([runAutoTopups(jobCtx(t)), runAutoTopups(jobCtx(t))]);
    expect(runs.reduce((n, r) => n + r.completed, 0)).toBe(1);
    const [first] = await autoPayments(t, org.id);
    expect(first!.status).toBe('completed');
    const creditValue = decimalUnits(org.credit_value, 6);
    // Enough to reach the target, rounded up to the cent.
    const cents = ((1000_000_000n - before) * creditValue + 9_999_999_999n) / 10_000_000_000n;
    expect(decimalUnits(first!.amount, 2)).toBe(cents);
    const after = await availableCredits(t, org.id);
    expect(after).toBeGreaterThanOrEqual(1000_000_000n);
    expect(after - 1000_000_000n).toBeLessThan((10_000n * 1_000_000n) / creditValue + 1n);

    // Spend and refill until the 25 EUR cap: the last purchase is what is left of the cap.
    for (let i = 0; i < 4; i++) {
      await spend(t, key, 690_000); // about 950 credits
      await runAutoTopups(jobCtx(t));
    }
    const payments = await autoPayments(t, org.id);
    const total = payments.reduce((sum, p) => sum + decimalUnits(p.amount, 2), 0n);
    expect(total).toBe(2500n);
    const view = AutoTopupSchema.parse((await t.call('GET', `/v1/orgs/${org.id}/auto_topup`, { key })).body);
    expect(view.purchased_this_month).toBe('25');
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('validates the settings and refuses roles that may not buy', async () => {
    const { org, key } = await createOrgWithKey(t);
    const put = (body: unknown, k = key) => t.call('PUT', `/v1/orgs/${org.id}/auto_topup`, { key: k, body });
    const target = await put({
      enabled: true,
      threshold_credits: '100',
      target_credits: '100',
      monthly_cap: '10',
    });
    expect(target.status).toBe(422);
    expect(target.body.param).toBe('target_credits');
    const cap = await put({
      enabled: true,
      threshold_credits: '1',
      target_credits: '100',
      monthly_cap: '0.5',
    });
    expect(cap.status).toBe(422);
    expect(cap.body.param).toBe('monthly_cap');
    const shape = await put({
      enabled: 'yes',
      threshold_credits: '1',
      target_credits: '100',
      monthly_cap: '10',
    });
    expect(shape.status).toBe(422);
    expect(shape.body.param).toBe('enabled');
    const viewer = await t.call('POST', `/v1/orgs/${org.id}/api_keys`, {
      body: { name: 'v', role: 'viewer' },
    });
    const refused = await put(
      { enabled: false, threshold_credits: '1', target_credits: '100', monthly_cap: '10' },
      viewer.body.key,
    );
    expect(refused.status).toBe(403);
    expect(await t.db.query('SELECT 1 FROM auto_topups WHERE org_id = $1', [org.id])).toEqual([]);
  });
});

describe('automatic top-up with Stripe', () => {
  const SECRET = 'whsec_test_auto_topup_0123456789';
  const sdk = new Stripe('sk_test_local_only');
  let fake: FakeStripe;
  let t: TestTally;
  beforeAll(async () => {
    fake = await startFakeStripe('sk_test_auto_topup');
    t = await startTally({
      STRIPE_SECRET_KEY: 'sk_test_auto_topup',
      STRIPE_WEBHOOK_SECRET: SECRET,
      STRIPE_API_BASE: fake.base,
    });
  });
  afterAll(async () => {
    await t.close();
    await fake.close();
  });

  async function deliver(body: unknown) {
    const payload = JSON.stringify(body);
    const header = sdk.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    const r = await t.call('POST', '/v1/webhooks/stripe', {
      key: '',
      raw: payload,
      headers: { 'stripe-signature': header },
    });
    expect(r.status).toBe(200);
    return r.body;
  }

  it('charges the card a checkout saved, off-session; a server error is retried under the same key; a decline turns it off', async () => {
    const { org, key } = await createOrgWithKey(t);
    const settings = { enabled: true, threshold_credits: '100', target_credits: '600', monthly_cap: '100' };
    const early = await t.call('PUT', `/v1/orgs/${org.id}/auto_topup`, { key, body: settings });
    expect(early.status).toBe(422);
    expect(early.body.detail).toMatch(/save_payment_method/);

    const checkout = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '10', save_payment_method: true },
    });
    expect(checkout.status).toBe(201);
    const created = fake.calls.at(-1)!;
    expect(created.form.get('payment_intent_data[setup_future_usage]')).toBe('off_session');
    expect(created.form.get('customer_creation')).toBe('always');
    const outcome = await deliver(
      stripeEvent('checkout.session.completed', {
        id: checkout.body.checkout_session_id,
        object: 'checkout.session',
        payment_status: 'paid',
        payment_intent: 'pi_checkout_1',
        customer: 'cus_saved1',
        amount_total: 1000,
        currency: 'eur',
        metadata: { org_id: org.id, payment_id: checkout.body.id },
      }),
    );
    expect(outcome.outcome).toBe('completed');
    const on = await t.call('PUT', `/v1/orgs/${org.id}/auto_topup`, { key, body: settings });
    expect(on.status, JSON.stringify(on.body)).toBe(200);
    expect(on.body.payment_method).toBe('stripe_saved_card');

    await spend(t, key, 600_000); // the 500 + 1 000 credits fall below 100
    await spend(t, key, 600_000);
    expect(await availableCredits(t, org.id)).toBeLessThan(100_000_000n);

    // Stripe answers 500: the payment stays pending and the next run charges it under the same key.
    fake.state.chargeServerError = true;
    expect((await runAutoTopups(jobCtx(t))).pending).toBe(1);
    fake.state.chargeServerError = false;
    expect((await runAutoTopups(jobCtx(t))).completed).toBe(1);
    const intents = fake.calls.filter((c) => c.path === '/v1/payment_intents');
    const [payment] = await autoPayments(t, org.id);
    expect(new Set(intents.map((c) => c.headers['idempotency-key']))).toEqual(
      new Set([`tally-auto-topup-${payment!.id}`]),
    );
    const charge = intents.at(-1)!.form;
    expect(charge.get('customer')).toBe('cus_saved1');
    expect(charge.get('payment_method')).toBe('pm_card_cus_saved1');
    expect(charge.get('off_session')).toBe('true');
    expect(charge.get('amount')).toBe(String(decimalUnits(payment!.amount, 2)));
    expect(payment!.status).toBe('completed');
    expect(await availableCredits(t, org.id)).toBeGreaterThanOrEqual(600_000_000n);

    // A declined card: the payment fails, automatic top-up turns off, the org's webhooks hear of it.
    await spend(t, key, 600_000);
    fake.state.declineCharges = true;
    expect((await runAutoTopups(jobCtx(t))).failed).toBe(1);
    fake.state.declineCharges = false;
    const payments = await autoPayments(t, org.id);
    expect(payments.at(-1)).toMatchObject({ status: 'failed' });
    expect(payments.at(-1)!.failure_reason).toMatch(/insufficient funds/);
    const off = AutoTopupSchema.parse((await t.call('GET', `/v1/orgs/${org.id}/auto_topup`, { key })).body);
    expect(off.enabled).toBe(false);
    expect(off.disabled_reason).toMatch(/declined/);
    const messages = await t.db.query<{ type: string }>(
      `SELECT type FROM webhook_messages WHERE org_id = $1 AND type LIKE 'auto_topup.%' ORDER BY seq`,
      [org.id],
    );
    expect(messages.map((m) => m.type)).toEqual(['auto_topup.succeeded', 'auto_topup.failed']);
    // Off means off: nothing more is bought.
    expect(await runAutoTopups(jobCtx(t))).toEqual({ started: 0, completed: 0, failed: 0, pending: 0 });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});
