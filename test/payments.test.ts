/**
 * Top-ups, payments and invoices. The real `stripe` package talks to a local HTTP server that speaks
 * Stripe's wire format (support/fakeStripe.ts), configured through STRIPE_API_BASE; webhooks are
 * signed with the SDK's own test-header helper. Invoices are parsed back from the PDF's text.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { extractText, getDocumentProxy } from 'unpdf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { splitVat } from '../src/domain/vat.ts';
import { BalanceSchema } from '../src/http/routes/ledger.ts';
import { CheckoutSessionSchema, InvoiceSettingsSchema, PaymentSchema } from '../src/http/routes/payments.ts';
import { ProblemSchema, pageOf } from '../src/http/schemas.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { paymentProvider } from '../src/services/payments/provider.ts';
import { type FakeStripe, startFakeStripe, stripeEvent } from './support/fakeStripe.ts';
import { createOrgWithKey, minutesAgo, onServer, startTally, type TestTally } from './support/harness.ts';

const WEBHOOK_SECRET = 'whsec_test_secret_for_payments_0123456789';
const sdk = new Stripe('sk_test_local_only');

let fake: FakeStripe;

let t: TestTally;
beforeAll(async () => {
  fake = await startFakeStripe('sk_test_tally_payments');
  t = await startTally({
    STRIPE_SECRET_KEY: 'sk_test_tally_payments',
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_BASE: fake.base,
    TALLY_PUBLIC_URL: 'https://app.example.com',
  });
});
afterAll(async () => {
  await t?.close();
  await fake.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface Checkout {
  id: string;
  checkout_session_id: string;
  amount: string;
  orgId: string;
}

function sessionEvent(
  type: string,
  c: Checkout,
  overrides: Record<string, unknown> = {},
  minor = BigInt(cents(c.amount)),
) {
  return stripeEvent(type, {
    id: c.checkout_session_id,
    object: 'checkout.session',
    mode: 'payment',
    status: 'complete',
    payment_status: 'paid',
    payment_intent: `pi_${c.id.slice(4)}`,
    amount_total: Number(minor),
    currency: 'eur',
    client_reference_id: c.id,
    metadata: { org_id: c.orgId, payment_id: c.id },
    ...overrides,
  });
}

/** Minor units of a decimal amount given with 0 or 2 decimals. */
const cents = (amount: string) => {
  const [w, f = ''] = amount.split('.');
  return Number(BigInt(w!) * 100n + BigInt(f.padEnd(2, '0')));
};

async function deliver(body: unknown, options: { secret?: string; tamper?: (s: string) => string } = {}) {
  const payload = JSON.stringify(body);
  const header = sdk.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? WEBHOOK_SECRET });
  return t.call('POST', '/v1/webhooks/stripe', {
    key: '',
    raw: options.tamper ? options.tamper(payload) : payload,
    headers: { 'stripe-signature': header },
  });
}

async function checkout(tt: TestTally, orgId: string, key: string, amount: string): Promise<Checkout> {
  const res = await tt.call('POST', `/v1/orgs/${orgId}/checkout_sessions`, { key, body: { amount } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const body = CheckoutSessionSchema.parse(res.body);
  return { id: body.id, checkout_session_id: body.checkout_session_id!, amount, orgId };
}

async function available(tt: TestTally, orgId: string): Promise<string> {
  const res = await tt.call('GET', `/v1/orgs/${orgId}/balance`);
  return BalanceSchema.parse(res.body).available_credits;
}

async function payment(tt: TestTally, orgId: string, id: string) {
  const res = await tt.call('GET', `/v1/orgs/${orgId}/payments/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return PaymentSchema.parse(res.body);
}

const topupGrants = (tt: TestTally, orgId: string) =>
  tt.db.query<{ id: string; amount: string; remaining: string; status: string }>(
    `SELECT id, amount, remaining, status FROM grants WHERE org_id = $1 AND kind = 'topup'`,
    [orgId],
  );

const chat = (id: string) => ({
  id,
  member: 'u1',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(1),
  // 103.5 credits each (see ledger.test.ts).
  usage: { input_tokens: 100_000, output_tokens: 50_000 },
});

async function pdfText(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const doc = await getDocumentProxy(new Uint8Array(bytes));
  const { text } = await extractText(doc, { mergePages: true });
  return text;
}

async function rawGet(tt: TestTally, path: string) {
  return tt.app.request(path, {
    headers: { authorization: 'Bearer tally_op_test_operator_key_0123456789abcdef' },
  });
}

// ---------------------------------------------------------------------------------------------

/** The payment webhooks written for an org's endpoints, oldest first. */
async function paymentMessages(orgId: string) {
  const rows = await t.db.query<{ payload: { type: string; data: Record<string, unknown> } }>(
    `SELECT payload FROM webhook_messages WHERE org_id = $1 AND type LIKE 'payment.%' ORDER BY seq`,
    [orgId],
  );
  return rows.map((r) => r.payload);
}

describe('payments: happy path with Stripe', () => {
  it('creates a Checkout Session through the SDK and grants credits only when the webhook confirms', async () => {
    const { org, key } = await createOrgWithKey(t);
    const before = await available(t, org.id);
    const calls = fake.calls.length;
    const c = await checkout(t, org.id, key, '50');

    // What the SDK sent over the wire.
    expect(fake.calls.length).toBe(calls + 1);
    const call = fake.calls.at(-1)!;
    expect(call.path).toBe('/v1/checkout/sessions');
    expect(call.headers['content-type']).toMatch(/application\/x-www-form-urlencoded/);
    expect(call.headers['idempotency-key']).toBe(`tally-checkout-${c.id}`);
    expect(call.form.get('mode')).toBe('payment');
    expect(call.form.get('line_items[0][quantity]')).toBe('1');
    expect(call.form.get('line_items[0][price_data][currency]')).toBe('eur');
    expect(call.form.get('line_items[0][price_data][unit_amount]')).toBe('5000');
    expect(call.form.get('metadata[org_id]')).toBe(org.id);
    expect(call.form.get('metadata[payment_id]')).toBe(c.id);
    expect(call.form.get('payment_intent_data[metadata][payment_id]')).toBe(c.id);
    expect(call.form.get('success_url')).toMatch(/^https:\/\/app\.example\.com\/.*checkout=success/);
    expect(call.form.get('cancel_url')).toMatch(/^https:\/\/app\.example\.com\/.*checkout=cancelled/);

    const created = await payment(t, org.id, c.id);
    expect(created).toMatchObject({
      status: 'pending',
      provider: 'stripe',
      amount: '50',
      currency: 'EUR',
      credits: '5000',
      checkout_session_id: c.checkout_session_id,
      grant_id: null,
      invoice_number: null,
    });
    expect(await available(t, org.id)).toBe(before);

    const res = await deliver(sessionEvent('checkout.session.completed', c));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outcome).toBe('completed');
    const paid = await payment(t, org.id, c.id);
    expect(paid).toMatchObject({ status: 'completed', payment_reference: `pi_${c.id.slice(4)}` });
    expect(paid.invoice_number).toMatch(/^INV-\d{6}$/);
    expect(BigInt(await available(t, org.id)) - BigInt(before)).toBe(5000n);
    expect(await checkLedger(t.db, org.id)).toEqual([]);

    const list = await t.call('GET', `/v1/orgs/${org.id}/payments?status=completed`, { key });
    expect(list.status).toBe(200);
    const page = pageOf(PaymentSchema).parse(list.body);
    expect(page.data.map((p) => p.id)).toEqual([c.id]);

    // Several statuses at once: the payments that went through, and the checkouts not finished.
    const open = await checkout(t, org.id, key, '10');
    const through = await t.call('GET', `/v1/orgs/${org.id}/payments?status=completed,refunded,disputed`, {
      key,
    });
    expect(
      pageOf(PaymentSchema)
        .parse(through.body)
        .data.map((p) => p.id),
    ).toEqual([c.id]);
    const unfinished = await t.call('GET', `/v1/orgs/${org.id}/payments?status=pending,failed`, { key });
    expect(
      pageOf(PaymentSchema)
        .parse(unfinished.body)
        .data.map((p) => p.id),
    ).toEqual([open.id]);
    for (const bad of ['paid', 'completed,', 'completed,,failed', '']) {
      const refused = await t.call('GET', `/v1/orgs/${org.id}/payments?status=${bad}`, { key });
      expect(refused.status, bad).toBe(400);
      expect(refused.body).toMatchObject({ param: 'status' });
      expect(refused.body.detail).toContain('separated by commas');
    }
  });

  it('grants once however often Stripe repeats the event, and once across completed + async_succeeded', async () => {
    const { org, key } = await createOrgWithKey(t);
    const before = BigInt(await available(t, org.id));
    const c = await checkout(t, org.id, key, '10');
    const completed = sessionEvent('checkout.session.completed', c);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) outcomes.push((await deliver(completed)).body.outcome);
    expect(outcomes).toEqual(['completed', 'duplicate', 'duplicate', 'duplicate']);
    const again = await deliver(sessionEvent('checkout.session.async_payment_succeeded', c));
    expect(again.body.outcome).toBe('already_completed');
    expect(BigInt(await available(t, org.id)) - before).toBe(1000n);
    expect(await topupGrants(t, org.id)).toHaveLength(1);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    // Webhook endpoints hear of the payment once, as the API shows it.
    const [message, ...more] = await paymentMessages(org.id);
    expect(more).toEqual([]);
    expect(message).toMatchObject({ type: 'payment.completed', data: await payment(t, org.id, c.id) });
    expect(message!.data.invoice_number).toMatch(/-\d{6}$/);
  });

  it('accepts events in any order: async_payment_succeeded before completed, and an unpaid completion first', async () => {
    const { org, key } = await createOrgWithKey(t);
    const before = BigInt(await available(t, org.id));
    const c = await checkout(t, org.id, key, '100');
    expect((await deliver(sessionEvent('checkout.session.async_payment_succeeded', c))).body.outcome).toBe(
      'completed',
    );
    expect((await deliver(sessionEvent('checkout.session.completed', c))).body.outcome).toBe(
      'already_completed',
    );
    expect(BigInt(await available(t, org.id)) - before).toBe(10_000n);

    // A bank debit: completed arrives unpaid (no credits), the money comes later.
    const d = await checkout(t, org.id, key, '12.34');
    const unpaid = await deliver(
      sessionEvent('checkout.session.completed', d, { payment_status: 'unpaid' }, 1234n),
    );
    expect(unpaid.body.outcome).toBe('awaiting_payment');
    expect((await payment(t, org.id, d.id)).status).toBe('pending');
    expect(BigInt(await available(t, org.id)) - before).toBe(10_000n);
    const later = await deliver(sessionEvent('checkout.session.async_payment_succeeded', d, {}, 1234n));
    expect(later.body.outcome).toBe('completed');
    expect(BigInt(await available(t, org.id)) - before).toBe(11_234n);
    expect(await topupGrants(t, org.id)).toHaveLength(2);
  });

  it('takes refunded credits back; what was already used is recorded as unrecovered', async () => {
    const { org, key } = await createOrgWithKey(t);
    const c = await checkout(t, org.id, key, '10');
    await deliver(sessionEvent('checkout.session.completed', c));
    // 10 calls of 103.5 credits: 500 of the plan, then 535 of the 1000 bought.
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: { events: Array.from({ length: 10 }, (_, i) => chat(`r${i}`)) },
    });
    expect(sent.status).toBe(200);
    expect(await available(t, org.id)).toBe('465');

    const charge = (amountRefunded: number) =>
      stripeEvent('charge.refunded', {
        id: `ch_${c.id.slice(4)}`,
        object: 'charge',
        amount: 1000,
        amount_refunded: amountRefunded,
        currency: 'eur',
        payment_intent: `pi_${c.id.slice(4)}`,
        metadata: {},
        refunded: amountRefunded === 1000,
      });
    const full = charge(1000);
    expect((await deliver(full)).body.outcome).toBe('refunded');
    expect((await deliver(full)).body.outcome).toBe('duplicate');
    expect(await available(t, org.id)).toBe('0');
    expect(await payment(t, org.id, c.id)).toMatchObject({
      status: 'refunded',
      refunded_amount: '10',
      reversed_credits: '465',
      unrecovered_credits: '535',
    });
    const [grant] = await topupGrants(t, org.id);
    expect(grant).toMatchObject({ remaining: '0', status: 'voided' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    // Once for the refund: the repeated Stripe event took nothing more back.
    const messages = await paymentMessages(org.id);
    expect(messages.map((m) => m.type)).toEqual(['payment.completed', 'payment.reversed']);
    expect(messages[1]!.data).toMatchObject({
      id: c.id,
      status: 'refunded',
      credits_taken_back: '465',
      credits_unrecovered: '535',
    });
  });

  it('applies partial refunds by the largest cumulative amount, in any order, and disputes', async () => {
    const { org, key } = await createOrgWithKey(t);
    const start = BigInt(await available(t, org.id));
    const c = await checkout(t, org.id, key, '100');
    const refund = (amountRefunded: number) =>
      stripeEvent('charge.refunded', {
        id: `ch_${c.id.slice(4)}`,
        object: 'charge',
        amount: 10_000,
        amount_refunded: amountRefunded,
        currency: 'eur',
        payment_intent: `pi_${c.id.slice(4)}`,
        metadata: { org_id: org.id, payment_id: c.id },
      });
    // The refund arrives before the payment is confirmed: recorded, applied at completion.
    expect((await deliver(refund(2500))).body.outcome).toBe('refunded');
    expect(BigInt(await available(t, org.id))).toBe(start);
    await deliver(sessionEvent('checkout.session.completed', c));
    expect(BigInt(await available(t, org.id)) - start).toBe(7500n);
    // An older, smaller cumulative amount arriving late changes nothing.
    await deliver(refund(1000));
    expect(BigInt(await available(t, org.id)) - start).toBe(7500n);
    await deliver(refund(5000));
    expect(BigInt(await available(t, org.id)) - start).toBe(5000n);
    expect(await payment(t, org.id, c.id)).toMatchObject({ status: 'completed', refunded_amount: '50' });

    const dispute = stripeEvent('charge.dispute.created', {
      id: `dp_${c.id.slice(4)}`,
      object: 'dispute',
      amount: 2000,
      currency: 'eur',
      charge: `ch_${c.id.slice(4)}`,
      payment_intent: `pi_${c.id.slice(4)}`,
      metadata: {},
      status: 'needs_response',
    });
    expect((await deliver(dispute)).body.outcome).toBe('disputed');
    expect((await deliver(dispute)).body.outcome).toBe('duplicate');
    expect(BigInt(await available(t, org.id)) - start).toBe(3000n);
    expect(await payment(t, org.id, c.id)).toMatchObject({
      status: 'disputed',
      disputed_amount: '20',
      reversed_credits: '7000',
      unrecovered_credits: '0',
    });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('numbers invoices sequentially without gaps across orgs', async () => {
    const rows = await t.db.query<{ invoice_number: string }>(
      'SELECT invoice_number FROM payments WHERE invoice_number IS NOT NULL ORDER BY completed_at, invoice_number',
    );
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.map((r) => r.invoice_number)).toEqual(
      rows.map((_, i) => `INV-${String(i + 1).padStart(6, '0')}`),
    );
  });
});

describe('payments: errors and security', () => {
  it('refuses a bad signature with 400 and changes nothing', async () => {
    const { org, key } = await createOrgWithKey(t);
    const c = await checkout(t, org.id, key, '10');
    const before = await available(t, org.id);
    const processed = await t.db.query('SELECT event_id FROM processed_stripe_events');
    const good = sessionEvent('checkout.session.completed', c);
    const attempts = [
      await deliver(good, { tamper: (s) => s.replace('"amount_total":1000', '"amount_total":100000') }),
      await deliver(good, { secret: 'whsec_someone_else' }),
      await t.call('POST', '/v1/webhooks/stripe', { key: '', raw: JSON.stringify(good) }),
      await t.call('POST', '/v1/webhooks/stripe', {
        key: '',
        raw: JSON.stringify(good),
        headers: { 'stripe-signature': 't=1,v1=deadbeef' },
      }),
    ];
    for (const res of attempts) {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(ProblemSchema.parse(res.body).code).toBe('invalid_signature');
    }
    expect(await available(t, org.id)).toBe(before);
    expect(await t.db.query('SELECT event_id FROM processed_stripe_events')).toEqual(processed);
    expect((await payment(t, org.id, c.id)).status).toBe('pending');
    // The genuine event still works afterwards.
    expect((await deliver(good)).body.outcome).toBe('completed');
  });

  it('answers 200 for an unknown org or payment, doing nothing', async () => {
    const grantsBefore = await t.db.query('SELECT id FROM grants');
    const res = await deliver(
      sessionEvent('checkout.session.completed', {
        id: 'pay_unknown',
        checkout_session_id: 'cs_test_unknown',
        amount: '10',
        orgId: 'org_does_not_exist',
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('ignored_unknown_payment');
    const other = await deliver(stripeEvent('customer.created', { id: 'cus_1', object: 'customer' }));
    expect(other.body.outcome).toBe('ignored_type');
    expect(await t.db.query('SELECT id FROM grants')).toEqual(grantsBefore);
  });

  it('refuses credits when the amount paid does not match the checkout', async () => {
    const { org, key } = await createOrgWithKey(t);
    const c = await checkout(t, org.id, key, '10');
    const res = await deliver(sessionEvent('checkout.session.completed', c, {}, 1n));
    expect(res.body.outcome).toBe('amount_mismatch');
    expect(await topupGrants(t, org.id)).toHaveLength(0);
    expect((await payment(t, org.id, c.id)).failure_reason).toMatch(/does not match/);
  });

  it('lets only roles with billing:purchase buy credits (viewer and member: 403)', async () => {
    const { org } = await createOrgWithKey(t);
    for (const role of ['viewer', 'member']) {
      const k = await t.call('POST', `/v1/orgs/${org.id}/api_keys`, { body: { name: role, role } });
      const res = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
        key: k.body.key,
        body: { amount: '10' },
      });
      expect(res.status).toBe(403);
      expect(ProblemSchema.parse(res.body).code).toBe('forbidden');
      expect((await t.call('GET', `/v1/orgs/${org.id}/payments`, { key: k.body.key })).status).toBe(403);
    }
    const billing = await t.call('POST', `/v1/orgs/${org.id}/api_keys`, {
      body: { name: 'billing', role: 'billing' },
    });
    await checkout(t, org.id, billing.body.key, '10');
    const rows = await t.db.query('SELECT id FROM payments WHERE org_id = $1', [org.id]);
    expect(rows).toHaveLength(1);
  });

  it('validates the amount: at least 1, at most TALLY_MAX_TOPUP, whole cents, decimal strings only', async () => {
    const { org, key } = await createOrgWithKey(t);
    for (const amount of ['0.99', '0', '10.001', '10000.01', '1e3', '-5']) {
      const res = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, { key, body: { amount } });
      expect(res.status, amount).toBe(422);
      expect(res.body.param).toBe('amount');
    }
    const number = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: 10 },
    });
    expect(number.status).toBe(422);
    const custom = await checkout(t, org.id, key, '10000');
    expect((await payment(t, org.id, custom.id)).credits).toBe('1000000');
    const byom = await createOrgWithKey(t, { billing_mode: 'byom' });
    const refused = await t.call('POST', `/v1/orgs/${byom.org.id}/checkout_sessions`, {
      key: byom.key,
      body: { amount: '10' },
    });
    expect(refused.status).toBe(422);
  });

  it('answers 503 and marks the payment failed when Stripe cannot create the session', async () => {
    const { org, key } = await createOrgWithKey(t);
    fake.state.failCheckout = true;
    try {
      const res = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
        key,
        body: { amount: '10' },
      });
      expect(res.status).toBe(503);
    } finally {
      fake.state.failCheckout = false;
    }
    const page = await t.call('GET', `/v1/orgs/${org.id}/payments`, { key });
    expect(page.body.data.map((p: { status: string }) => p.status)).toEqual(['failed']);
  });

  it('never runs the local provider while Stripe keys are set', async () => {
    const { org } = await createOrgWithKey(t);
    const session = `lcs_${randomBytes(24).toString('base64url')}`;
    await t.db.query(
      `INSERT INTO payments (org_id, id, provider, amount, currency, credits, checkout_session_id, success_url, cancel_url, created_by)
       VALUES ($1, 'pay_planted', 'local', 10, 'EUR', 1000000000, $2, 'x', 'x', 'test')`,
      [org.id, session],
    );
    expect((await t.call('GET', `/local-checkout/${session}`, { key: '' })).status).toBe(404);
    expect((await t.call('POST', `/local-checkout/${session}/confirm`, { key: '' })).status).toBe(404);
    expect(await topupGrants(t, org.id)).toHaveLength(0);
    expect(paymentProvider(loadConfig({ STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }))).toBe('none');
    expect(paymentProvider(loadConfig({ STRIPE_SECRET_KEY: 'sk_test_x' }))).toBe('stripe');
    expect(paymentProvider(loadConfig({}))).toBe('local');
    // Outside demo mode, no Stripe key means no top-ups, not free ones.
    expect(paymentProvider(loadConfig({ TALLY_DEMO: '0' }))).toBe('none');
  });

  it('grants once when the same webhook is delivered 10 times concurrently', async () => {
    const { org, key } = await createOrgWithKey(t);
    const before = BigInt(await available(t, org.id));
    const c = await checkout(t, org.id, key, '300');
    const completed = sessionEvent('checkout.session.completed', c);
    const async = sessionEvent('checkout.session.async_payment_succeeded', c);
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => deliver(completed)),
      ...Array.from({ length: 3 }, () => deliver(async)),
    ]);
    expect(results.every((r) => r.status === 200)).toBe(true);
    const outcomes = results.map((r) => r.body.outcome as string);
    expect(outcomes.filter((o) => o === 'completed')).toHaveLength(1);
    expect(BigInt(await available(t, org.id)) - before).toBe(30_000n);
    expect(await topupGrants(t, org.id)).toHaveLength(1);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    if (onServer) expect(t.db.kind).toBe('server');
  });
});

// ---------------------------------------------------------------------------------------------

describe('payments: the local provider and invoices (no Stripe keys)', () => {
  let local: TestTally;
  beforeAll(async () => {
    local = await startTally({ TALLY_MAX_TOPUP: '500' });
  });
  afterAll(() => local?.close());

  it('completes a top-up offline through the labelled local checkout page', async () => {
    const { org, key } = await createOrgWithKey(local);
    const before = BigInt(await available(local, org.id));
    const res = await local.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '50' },
    });
    expect(res.status).toBe(201);
    const c = CheckoutSessionSchema.parse(res.body);
    expect(c).toMatchObject({ provider: 'local', status: 'pending', amount: '50', credits: '5000' });
    const url = new URL(c.url!);
    expect(url.pathname).toBe(`/local-checkout/${c.checkout_session_id}`);

    const page = await local.app.request(url.pathname);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Local test payment provider');
    expect(html).toContain('No real money moves');
    expect(BigInt(await available(local, org.id))).toBe(before);

    // A browser's form post: back to the app.
    const form = await local.app.request(`${url.pathname}/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toMatch(/checkout=success/);
    // Confirming again (a double click) grants nothing more.
    const again = await local.call('POST', `${url.pathname}/confirm`, { key: '' });
    expect(again.status).toBe(200);
    expect(PaymentSchema.parse(again.body)).toMatchObject({ status: 'completed', provider: 'local' });
    expect(BigInt(await available(local, org.id)) - before).toBe(5000n);
    expect(await checkLedger(local.db, org.id)).toEqual([]);

    // An unknown or malformed session is a 404, and the max is configurable.
    expect((await local.call('GET', '/local-checkout/lcs_nope', { key: '' })).status).toBe(404);
    const over = await local.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '500.01' },
    });
    expect(over.status).toBe(422);
  });

  it('issues PDF invoices with sequential numbers, seller and buyer, VAT split exactly', async () => {
    const forbidden = await local.call('PUT', '/v1/settings/invoicing', {
      key: (await createOrgWithKey(local)).key,
      body: { vat_rate: '0' },
    });
    expect(forbidden.status).toBe(403);
    const settings = await local.call('PUT', '/v1/settings/invoicing', {
      body: {
        seller_name: 'Example Seller GmbH',
        seller_details: ['Hauptstrasse 1', '10115 Berlin, Germany'],
        seller_vat_id: 'DE123456789',
        vat_rate: '19',
        invoice_prefix: 'TLY',
      },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
    InvoiceSettingsSchema.parse(settings.body);
    const bad = await local.call('PUT', '/v1/settings/invoicing', { body: { vat_rate: '100' } });
    expect(bad.status).toBe(422);

    const { org, key } = await createOrgWithKey(local, { name: 'Buyer Corp', external_id: 'cust-42' });
    const ids: string[] = [];
    for (const amount of ['100', '10', '1.23']) {
      const res = await local.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, { key, body: { amount } });
      const confirmed = await local.call('POST', `${new URL(res.body.url).pathname}/confirm`, { key: '' });
      expect(confirmed.status).toBe(200);
      ids.push(res.body.id);
    }
    const numbers = await Promise.all(
      ids.map(async (id) => (await payment(local, org.id, id)).invoice_number),
    );
    // The first org's top-up in this Tally had number 1.
    expect(numbers).toEqual(['TLY-000002', 'TLY-000003', 'TLY-000004']);

    // 100 incl. 19 % VAT: VAT = 100 x 19/119 = 15.966.. -> 15.97, net 84.03.
    const p = await payment(local, org.id, ids[0]!);
    expect(p).toMatchObject({ vat_rate: '19', net_amount: '84.03', vat_amount: '15.97', amount: '100' });
    const res = await rawGet(local, `/v1/orgs/${org.id}/payments/${ids[0]}/invoice.pdf`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toContain('TLY-000002.pdf');
    const bytes = await res.arrayBuffer();
    expect(Buffer.from(bytes).subarray(0, 5).toString()).toBe('%PDF-');
    const text = await pdfText(bytes);
    for (const expected of [
      'Invoice number: TLY-000002',
      'Example Seller GmbH',
      'Hauptstrasse 1',
      'VAT ID: DE123456789',
      'Buyer Corp',
      `Organization ${org.id}`,
      'Customer reference: cust-42',
      'Prepaid credits: 10000 credits',
      'EUR 84.03',
      'VAT rate 19%',
      'EUR 15.97',
      'EUR 100.00',
      'Currency: EUR',
      `Payment reference: local_${ids[0]}`,
      'no money was moved',
    ]) {
      expect(text, expected).toContain(expected);
    }

    // 1.23 at 19 %: VAT 0.1963.. -> 0.20; net + VAT = total.
    const small = await payment(local, org.id, ids[2]!);
    expect(small).toMatchObject({ net_amount: '1.03', vat_amount: '0.2', amount: '1.23' });

    // A pending payment has no invoice yet.
    const pending = await local.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '5' },
    });
    const none = await local.call('GET', `/v1/orgs/${org.id}/payments/${pending.body.id}/invoice.pdf`, {
      key,
    });
    expect(none.status).toBe(409);
    expect(
      (await local.call('GET', `/v1/orgs/${org.id}/payments/pay_missing/invoice.pdf`, { key })).status,
    ).toBe(404);
  });

  it('splits VAT once, half to even, so net + VAT = total', () => {
    // 20 %: VAT = total / 6. 1.23 / 6 = 0.205 -> 0.20 (half to even), net 1.03.
    expect(splitVat(123n, '20', 2)).toEqual({ net: 103n, vat: 20n, total: 123n });
    // 1.29 / 6 = 0.215 -> 0.22 (half to even rounds up to the even cent).
    expect(splitVat(129n, '20', 2)).toEqual({ net: 107n, vat: 22n, total: 129n });
    expect(splitVat(1000n, '0', 2)).toEqual({ net: 1000n, vat: 0n, total: 1000n });
    for (let total = 100n; total < 1300n; total += 7n) {
      for (const rate of ['7', '7.7', '19', '20', '21', '25.5']) {
        const s = splitVat(total, rate, 2);
        expect(s.net + s.vat).toBe(total);
      }
    }
  });
});
