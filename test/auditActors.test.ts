/**
 * Who the audit log names. A request's row names its principal (the org API key, the member behind
 * an embed token, the operator key) and carries the request id its response carried; work Tally
 * does on its own (a job, a payment provider's confirmation) names itself and has no request id.
 * No HTTP route lists audit rows, so there is no org's listing to leak another org's rows into.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobCatalog } from '../src/jobs/catalog.ts';
import { registerJobs, runDueJob } from '../src/jobs/runner.ts';
import { type FakeStripe, startFakeStripe, stripeEvent } from './support/fakeStripe.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

const GENERATED_REQUEST_ID = /^req_\w{20}$/;

const auditRows = (tt: TestTally, orgId: string, action: string) =>
  tt.db.query<{ actor: string; request_id: string | null }>(
    'SELECT actor, request_id FROM audit_log WHERE org_id = $1 AND action = $2 ORDER BY id',
    [orgId, action],
  );

/**
 * Runs one job of the catalog through the runner, with the context `npm start` gives the scheduler:
 * its principal and request id would show in a row that took them from the context.
 */
async function runJob(tt: TestTally, name: string) {
  const catalog = jobCatalog({ ...tt, principal: { kind: 'operator', id: 'op_jobs' }, requestId: 'jobs' });
  const only = catalog.filter((j) => j.name === name);
  await registerJobs(tt.db, only);
  await tt.db.query('UPDATE scheduled_jobs SET next_run_at = now() WHERE name = $1', [name]);
  expect(await runDueJob(tt.db, only, 'w1', tt.logger)).toBe(name);
  const [run] = await tt.db.query('SELECT last_error FROM scheduled_jobs WHERE name = $1', [name]);
  expect(run).toEqual({ last_error: null });
}

describe('audit rows without Stripe', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally();
  });
  afterAll(() => t.close());

  it("name the org API key and carry the response's request id, or the client's when well formed", async () => {
    const { org, key, keyId } = await createOrgWithKey(t);
    const addMember = (externalId: string, headers: Record<string, string> = {}) =>
      t.call('POST', `/v1/orgs/${org.id}/members`, { key, headers, body: { external_id: externalId } });
    const generated = await addMember('u_1');
    const sent = await addMember('u_2', { 'x-request-id': 'client-trace.42' });
    // Not a well-formed id: replaced by one of Tally's own.
    const replaced = await addMember('u_3', { 'x-request-id': 'two words' });
    expect([generated.status, sent.status, replaced.status]).toEqual([201, 201, 201]);
    const ids = [generated, sent, replaced].map((r) => r.headers.get('x-request-id'));
    expect(ids[0]).toMatch(GENERATED_REQUEST_ID);
    expect(ids[1]).toBe('client-trace.42');
    expect(ids[2]).toMatch(GENERATED_REQUEST_ID);
    expect(await auditRows(t, org.id, 'member.created')).toEqual(
      ids.map((id) => ({ actor: keyId, request_id: id })),
    );
  });

  it('name the operator key for what the operator does', async () => {
    const created = await t.call('POST', '/v1/orgs', {
      body: { name: 'Operated', currency: 'EUR', timezone: 'Europe/Berlin' },
    });
    expect(created.status).toBe(201);
    const [operatorKey] = await t.db.query<{ id: string }>(
      'SELECT id FROM operator_keys WHERE revoked_at IS NULL',
    );
    expect(await auditRows(t, created.body.id, 'org.created')).toEqual([
      { actor: operatorKey!.id, request_id: created.headers.get('x-request-id') },
    ]);
  });

  it('name the member behind an embed token', async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'u_embed', role: 'admin' },
    });
    const minted = await t.call('POST', `/v1/orgs/${org.id}/embed_tokens`, {
      key,
      body: { member: member.body.id, role: 'admin' },
    });
    expect(minted.status).toBe(201);
    const limits = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key: minted.body.token,
      body: { alert_threshold: '10', allowed_limit: '20' },
    });
    expect(limits.status).toBe(200);
    expect(await auditRows(t, org.id, 'limits.set')).toEqual([
      { actor: member.body.id, request_id: limits.headers.get('x-request-id') },
    ]);
  });

  it('name the auto top-up job, with no request id, for the credits it buys', async () => {
    const { org, key } = await createOrgWithKey(t);
    const settings = await t.call('PUT', `/v1/orgs/${org.id}/auto_topup`, {
      key,
      body: { enabled: true, threshold_credits: '100000', target_credits: '100100', monthly_cap: '20' },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
    // The job looks at orgs with a balance: this one has its first with the grant.
    const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: { kind: 'bonus', amount_credits: '1' },
    });
    expect(grant.status).toBe(201);
    await runJob(t, 'auto_topups');
    expect(await auditRows(t, org.id, 'payment.completed')).toEqual([
      { actor: 'auto_topup', request_id: null },
    ]);
  });

  it('name the webhook delivery job, with no request id, when it disables a failing endpoint', async () => {
    const failing = createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    try {
      const { org, key } = await createOrgWithKey(t);
      const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
      const endpoint = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, { key, body: { url } });
      expect(endpoint.status).toBe(201);
      // Failing for longer than TALLY_WEBHOOK_DISABLE_AFTER_DAYS (5): the next failure disables it.
      await t.db.query(
        "UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = $1",
        [endpoint.body.id],
      );
      const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
        body: { kind: 'bonus', amount_credits: '1' },
      });
      expect(grant.status).toBe(201);
      await runJob(t, 'deliver_webhooks');
      expect(await auditRows(t, org.id, 'webhook_endpoint.disabled')).toEqual([
        { actor: 'webhook_delivery', request_id: null },
      ]);
    } finally {
      failing.closeAllConnections();
      await new Promise((resolve) => failing.close(resolve));
    }
  });

  it('name the local payment provider, with no request id, when its checkout page confirms', async () => {
    const { org, key } = await createOrgWithKey(t);
    const checkout = await t.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '10' },
    });
    expect(checkout.status).toBe(201);
    const confirmed = await t.call('POST', `${new URL(checkout.body.url).pathname}/confirm`, { key: '' });
    expect(confirmed.status).toBe(200);
    expect(confirmed.headers.get('x-request-id')).toMatch(GENERATED_REQUEST_ID);
    expect(await auditRows(t, org.id, 'payment.completed')).toEqual([
      { actor: 'local_payment_provider', request_id: null },
    ]);
  });
});

describe('audit rows with Stripe', () => {
  const SECRET_KEY = 'sk_test_tally_audit_actors';
  const WEBHOOK_SECRET = 'whsec_test_secret_for_audit_actors_0123';
  let fake: FakeStripe;
  let s: TestTally;
  beforeAll(async () => {
    fake = await startFakeStripe(SECRET_KEY);
    s = await startTally({
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_BASE: fake.base,
    });
  });
  afterAll(async () => {
    await s?.close();
    await fake.close();
  });

  async function deliver(event: unknown) {
    const payload = JSON.stringify(event);
    const header = new Stripe(SECRET_KEY).webhooks.generateTestHeaderString({
      payload,
      secret: WEBHOOK_SECRET,
    });
    const res = await s.call('POST', '/v1/webhooks/stripe', {
      key: '',
      raw: payload,
      headers: { 'stripe-signature': header },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(GENERATED_REQUEST_ID);
    return res.body.outcome;
  }

  it('name Stripe, with no request id, for what its signed webhooks confirm and refund', async () => {
    const { org, key } = await createOrgWithKey(s);
    const checkout = await s.call('POST', `/v1/orgs/${org.id}/checkout_sessions`, {
      key,
      body: { amount: '10' },
    });
    expect(checkout.status, JSON.stringify(checkout.body)).toBe(201);
    const payment = checkout.body;
    const paymentIntent = `pi_${payment.id.slice(4)}`;
    const completed = stripeEvent('checkout.session.completed', {
      id: payment.checkout_session_id,
      object: 'checkout.session',
      mode: 'payment',
      status: 'complete',
      payment_status: 'paid',
      payment_intent: paymentIntent,
      amount_total: 1000,
      currency: 'eur',
      client_reference_id: payment.id,
      metadata: { org_id: org.id, payment_id: payment.id },
    });
    expect(await deliver(completed)).toBe('completed');
    const refunded = stripeEvent('charge.refunded', {
      id: `ch_${payment.id.slice(4)}`,
      object: 'charge',
      amount: 1000,
      amount_refunded: 1000,
      currency: 'eur',
      payment_intent: paymentIntent,
      metadata: { org_id: org.id, payment_id: payment.id },
    });
    expect(await deliver(refunded)).toBe('refunded');
    const bySystem = [{ actor: 'stripe', request_id: null }];
    expect(await auditRows(s, org.id, 'payment.completed')).toEqual(bySystem);
    expect(await auditRows(s, org.id, 'payment.reversed')).toEqual(bySystem);
  });
});
