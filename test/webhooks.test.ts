import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import {
  CreatedWebhookEndpointSchema,
  WebhookDeliverySchema,
  WebhookEndpointSchema,
} from '../src/http/routes/webhooks.ts';
import { pageOf } from '../src/http/schemas.ts';
import { deliverWebhooks, retryDelaySeconds } from '../src/services/webhooks/deliverWebhooks.ts';
import { emitWebhookEvent } from '../src/services/webhooks/emitWebhookEvent.ts';
import { sendDailySummaries, yesterdayOf } from '../src/services/webhooks/sendDailySummaries.ts';
import { lastMonthOf, sendMonthlySummaries } from '../src/services/webhooks/sendMonthlySummaries.ts';
import { createOrgWithKey, onServer, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

// ---------------------------------------------------------------------------------------------
// A real HTTP receiver on a local port, and a signature check written from the Standard Webhooks
// spec, independent of Tally's signing code.

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** The answer to give: a status code, or 'hang' to never answer. */
  answer: (r: Omit<Received, 'status'>) => number | 'hang' | Promise<number>;
  close(): Promise<void>;
}

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  // Every test starts with no endpoint: one left live (an operator-wide one receives every org)
  // would take deliveries of the next test and change what it counts.
  const live = await t.db.query<{ id: string; org_id: string | null }>(
    'SELECT id, org_id FROM webhook_endpoints WHERE deleted_at IS NULL',
  );
  for (const e of live) {
    const res = await t.call(
      'DELETE',
      `${e.org_id ? `/v1/orgs/${e.org_id}` : '/v1'}/webhook_endpoints/${e.id}`,
    );
    expect(res.status).toBe(200);
  }
});

async function startReceiver(port = 0): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    answer: () => 200,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      const request = { path: req.url ?? '', headers: req.headers, body };
      const status = await receiver.answer(request);
      if (status === 'hang') return;
      receiver.received.push({ ...request, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  receivers.push(receiver);
  return receiver;
}

/** Standard Webhooks verification: HMAC-SHA256 over `${id}.${timestamp}.${body}` with the decoded secret. */
function verifySignature(secret: string, r: Pick<Received, 'headers' | 'body'>): boolean {
  const id = r.headers['webhook-id'];
  const timestamp = r.headers['webhook-timestamp'];
  const signatures = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${r.body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const okDelivered = (r: Receiver) => r.received.filter((x) => x.status >= 200 && x.status < 300);
const bodyOf = (r: Received) => JSON.parse(r.body);
const EndpointPage = pageOf(WebhookEndpointSchema);
const DeliveryPage = pageOf(WebhookDeliverySchema);

async function createEndpoint(
  orgId: string | null,
  url: string,
  options: { key?: string; event_types?: string[] } = {},
) {
  const res = await t.call('POST', orgId ? `/v1/orgs/${orgId}/webhook_endpoints` : '/v1/webhook_endpoints', {
    ...(options.key ? { key: options.key } : {}),
    body: { url, ...(options.event_types ? { event_types: options.event_types } : {}) },
  });
  expect(res.status).toBe(201);
  return CreatedWebhookEndpointSchema.parse(res.body);
}

const grant = (orgId: string, amount: string) =>
  t.call('POST', `/v1/orgs/${orgId}/grants`, { body: { kind: 'bonus', amount_credits: amount } });

/** Runs the worker until nothing is due (the tests move time by moving next_attempt_at); receivers are local. */
const deliver = (options: Parameters<typeof deliverWebhooks>[1] = {}) =>
  deliverWebhooks(t.db, { timeoutMs: 2_000, allowPrivateAddresses: true, ...options });

const makeDue = (endpointId: string) =>
  t.db.query(
    `UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE endpoint_id = $1 AND status = 'pending'`,
    [endpointId],
  );

/** The clock moves `seconds` on, for the delivery worker: every stored time of the endpoint's deliveries moves back. */
const advance = (endpointId: string, seconds: number) =>
  t.db.query(
    `UPDATE webhook_deliveries SET next_attempt_at = next_attempt_at - make_interval(secs => $2),
            retry_until = retry_until - make_interval(secs => $2), created_at = created_at - make_interval(secs => $2),
            last_attempt_at = last_attempt_at - make_interval(secs => $2)
      WHERE endpoint_id = $1`,
    [endpointId, seconds],
  );

/** As `advance`, and the endpoint's failing period started that much earlier too. */
async function age(endpointId: string, seconds: number) {
  await t.db.query(
    'UPDATE webhook_endpoints SET failing_since = failing_since - make_interval(secs => $2) WHERE id = $1',
    [endpointId, seconds],
  );
  await advance(endpointId, seconds);
}

const DAY = 86_400;

/** One of the org's endpoints as the list shows it. */
async function endpointOf(orgId: string, endpointId: string, key?: string) {
  const res = await t.call('GET', `/v1/orgs/${orgId}/webhook_endpoints?limit=100`, key ? { key } : {});
  expect(res.status).toBe(200);
  return EndpointPage.parse(res.body).data.find((e) => e.id === endpointId)!;
}

const patchEndpoint = (orgId: string | null, endpointId: string, body: unknown, key?: string) =>
  t.call('PATCH', `${orgId ? `/v1/orgs/${orgId}` : '/v1'}/webhook_endpoints/${endpointId}`, {
    ...(key ? { key } : {}),
    body,
  });

async function deliveriesOf(orgId: string | null, endpointId: string, key?: string) {
  const base = orgId ? `/v1/orgs/${orgId}/webhook_endpoints` : '/v1/webhook_endpoints';
  const res = await t.call('GET', `${base}/${endpointId}/deliveries?limit=100`, key ? { key } : {});
  expect(res.status).toBe(200);
  return DeliveryPage.parse(res.body).data;
}

// ---------------------------------------------------------------------------------------------

describe('webhooks: happy path', () => {
  it('signs each delivery per Standard Webhooks and sends the {type, timestamp, data} envelope', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, `${receiver.url}/hooks`, { key });
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(endpoint.secret.slice(6), 'base64')).toHaveLength(32);
    const granted = await grant(org.id, '25');
    expect(await deliver()).toEqual({ succeeded: 1, retrying: 0, failed: 0 });

    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.path).toBe('/hooks');
    expect(got.headers['content-type']).toBe('application/json');
    expect(verifySignature(endpoint.secret, got)).toBe(true);
    // The check is real: another secret or a changed body fails it.
    expect(verifySignature(`whsec_${Buffer.alloc(32, 1).toString('base64')}`, got)).toBe(false);
    expect(verifySignature(endpoint.secret, { ...got, body: got.body.replace('25', '26') })).toBe(false);
    const body = bodyOf(got);
    expect(body).toEqual({
      type: 'grant.created',
      timestamp: expect.any(String),
      data: expect.objectContaining({ id: granted.body.id, kind: 'bonus', amount_credits: '25' }),
    });

    const [logged] = await deliveriesOf(org.id, endpoint.id, key);
    expect(logged).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      last_status_code: 200,
      last_error: null,
      next_attempt_at: null,
      event_type: 'grant.created',
      message_id: got.headers['webhook-id'],
    });
    expect(logged!.payload).toEqual(body);
  });

  it('delivers an endpoint its messages in order, and alerts with the alert as data', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    for (const amount of ['1', '2', '3', '4', '5']) await grant(org.id, amount);
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '0.01', allowed_limit: null },
    });
    await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'e1',
            member: 'u1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: new Date().toISOString(),
            usage: { output_tokens: 10_000 },
          },
        ],
      },
    });
    await deliver({ batch: 1 });
    const bodies = receiver.received.map(bodyOf);
    expect(
      bodies.map((b) => (b.type === 'grant.created' ? `grant ${b.data.amount_credits}` : b.type)),
    ).toEqual([
      'grant 1',
      'grant 2',
      'grant 3',
      'grant 4',
      'grant 5',
      // The first event issued the cycle's plan allowance, then crossed the alert threshold.
      'grant 500',
      'alert.threshold_crossed',
    ]);
    const alerts = await t.call('GET', `/v1/orgs/${org.id}/alerts`, { key });
    expect(bodies[6].data).toEqual(alerts.body.data[0]);
    expect(receiver.received.every((r) => verifySignature(endpoint.secret, r))).toBe(true);
  });

  it('filters by event type; operator-wide endpoints receive every org', async () => {
    const receiver = await startReceiver();
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const onlyQuota = await createEndpoint(a.org.id, `${receiver.url}/quota`, {
      key: a.key,
      event_types: ['quota.exceeded'],
    });
    const ofA = await createEndpoint(a.org.id, `${receiver.url}/a`, { key: a.key });
    const everyOrg = await createEndpoint(null, `${receiver.url}/all`);
    expect(everyOrg.org_id).toBeNull();
    await grant(a.org.id, '7');
    await grant(b.org.id, '8');
    await deliver();
    const seen = receiver.received.map((r) => `${r.path} ${bodyOf(r).data.amount_credits}`).sort();
    expect(seen).toEqual(['/a 7', '/all 7', '/all 8']);
    expect(await deliveriesOf(a.org.id, onlyQuota.id, a.key)).toEqual([]);
    expect(await deliveriesOf(null, everyOrg.id)).toHaveLength(2);
    expect(verifySignature(ofA.secret, receiver.received.find((r) => r.path === '/a')!)).toBe(true);
    expect(verifySignature(everyOrg.secret, receiver.received.find((r) => r.path === '/all')!)).toBe(true);
    // Operator-wide endpoints would get the other tests' messages too.
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${everyOrg.id}`)).status).toBe(200);
  });

  it('sends a daily usage summary of yesterday in the org time zone, once', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t, { timezone: 'America/New_York' });
    await createEndpoint(org.id, receiver.url, { key, event_types: ['usage.daily_summary'] });
    const now = new Date();
    const yesterday = yesterdayOf('America/New_York', now);
    const at = (hours: number) => new Date(yesterday.start.getTime() + hours * 3_600_000).toISOString();
    const event = (id: string, occurred_at: string, member: string) => ({
      id,
      member,
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      occurred_at,
      usage: { output_tokens: 10_000 },
    });
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          event('y1', at(1), 'u1'),
          event('y2', at(23), 'u2'),
          // Today, and the day before yesterday: not in the summary.
          event('t1', new Date(yesterday.end.getTime() + 60_000).toISOString(), 'u1'),
          event('d1', new Date(yesterday.start.getTime() - 60_000).toISOString(), 'u1'),
        ],
      },
    });
    expect(sent.body.results.map((r: any) => r.status)).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'accepted',
    ]);
    expect(await sendDailySummaries(t.db, now)).toMatchObject({ sent: expect.any(Number) });
    await Promise.all([sendDailySummaries(t.db, now), sendDailySummaries(t.db, now)]);
    await deliver();
    expect(receiver.received).toHaveLength(1);
    expect(bodyOf(receiver.received[0]!)).toMatchObject({
      type: 'usage.daily_summary',
      data: {
        org_id: org.id,
        date: yesterday.date,
        timezone: 'America/New_York',
        currency: 'EUR',
        calls: 2,
        active_members: 2,
        credits: '27.6',
        cost: '0.276',
        output_tokens: 20_000,
        top_features: [{ feature: 'Chat', calls: 2, credits: '27.6', cost: '0.276' }],
      },
    });
    // The org's own endpoint never learns what the calls cost the operator.
    expect(receiver.received[0]!.body).not.toContain('provider_cost');
  });

  it("sends a monthly summary of the org's last local month once, with the pages' own figures", async () => {
    const receiver = await startReceiver();
    const zone = 'America/New_York';
    const { org, key } = await createOrgWithKey(t, { timezone: zone });
    await createEndpoint(org.id, receiver.url, { key, event_types: ['usage.monthly_summary'] });
    const quiet = await createOrgWithKey(t, { timezone: zone });
    const now = new Date();
    const last = lastMonthOf(zone, now);
    const event = (id: string, at: Date, feature: string, model: string) => ({
      id,
      member: id.startsWith('a') ? 'u1' : 'u2',
      feature,
      provider: 'openai',
      model,
      occurred_at: at.toISOString(),
      usage: { input_tokens: 3_000, output_tokens: 10_000 },
    });
    const lastMonth = new Date(last.end.getTime() - 12 * 3_600_000);
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          event('a1', lastMonth, 'Chat', 'gpt-4o'),
          event('b1', new Date(lastMonth.getTime() - 60_000), 'Agents', 'gpt-4o-mini'),
          {
            ...event('a2', new Date(lastMonth.getTime() - 120_000), 'Chat', 'gpt-4o-mini'),
            metadata: { error: 'timeout' },
          },
          // This month: not in the summary.
          event('a3', new Date(last.end.getTime() + 60_000), 'Chat', 'gpt-4o'),
        ],
      },
    });
    expect(sent.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    // The limit set before last month ended is the one its summary compares with.
    await t.db.query(
      `INSERT INTO org_limit_changes (org_id, changed_at, alert_threshold, allowed_limit) VALUES ($1, $2, '1', '2')`,
      [org.id, last.start],
    );
    const ctx = {
      db: t.db,
      config: t.config,
      prices: t.prices,
      principal: { kind: 'operator' as const, id: 'op_test' },
      requestId: 'req_test',
    };
    // Out of time before the first org: nothing sent, and the run says it stopped short.
    expect(await sendMonthlySummaries(ctx, now, { budgetMs: 0 })).toEqual({ sent: 0, done: false });
    await Promise.all([sendMonthlySummaries(ctx, now), sendMonthlySummaries(ctx, now)]);
    await sendMonthlySummaries(ctx, now);
    await deliver();
    expect(receiver.received).toHaveLength(1);
    const { type, data } = bodyOf(receiver.received[0]!);
    expect(type).toBe('usage.monthly_summary');
    const page = async (path: string) => (await t.call('GET', `/v1/orgs/${org.id}${path}`, { key })).body;
    const summary = await page('/usage/summary?range=last_month');
    const features = await page('/usage/breakdown?range=last_month&by=feature&limit=5');
    const models = await page('/usage/breakdown?range=last_month&by=model&limit=5');
    const top = (rows: Record<string, unknown>[]) =>
      rows.map(({ key, label, calls, credits, cost, share }) => ({
        key,
        label,
        calls,
        credits,
        cost,
        share,
      }));
    expect(data).toEqual({
      org_id: org.id,
      month: last.month,
      timezone: zone,
      start: summary.range.start,
      end: summary.range.end,
      unit: 'credits',
      currency: 'EUR',
      calls: 3,
      failed_calls: 1,
      error_rate: '33.3',
      active_members: 2,
      credits: summary.credits,
      cost: summary.cost,
      tokens: summary.tokens,
      top_features: top(features.data),
      top_models: top(models.data),
      limit: expect.objectContaining({ allowed_limit: '2', alert_threshold: '1' }),
      report_path: expect.stringMatching(
        /^\/v1\/orgs\/org_\w+\/usage\/export\?format=pdf&range=custom&from=/,
      ),
    });
    expect(data.top_features.map((f: { key: string }) => f.key).sort()).toEqual(['Agents', 'Chat']);
    expect(JSON.stringify(data)).not.toContain('provider_cost');
    // The report it names is that month's PDF.
    const report = await t.app.request(data.report_path, { headers: { authorization: `Bearer ${key}` } });
    expect(report.status).toBe(200);
    expect(report.headers.get('content-type')).toBe('application/pdf');
    // An org with no usage last month got nothing.
    expect(
      await t.db.query(
        "SELECT 1 FROM webhook_messages WHERE org_id = $1 AND type = 'usage.monthly_summary'",
        [quiet.org.id],
      ),
    ).toEqual([]);
  });

  it('replay sends a delivery again with the same webhook-id', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await grant(org.id, '3');
    await deliver();
    const [delivery] = await deliveriesOf(org.id, endpoint.id, key);
    const replay = await t.call(
      'POST',
      `/v1/orgs/${org.id}/webhook_endpoints/${endpoint.id}/deliveries/${delivery!.id}/replay`,
      { key },
    );
    expect(replay.status).toBe(202);
    expect(WebhookDeliverySchema.parse(replay.body)).toMatchObject({ status: 'pending', attempts: 0 });
    await deliver();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
    expect(receiver.received[1]!.body).toBe(receiver.received[0]!.body);
    expect(verifySignature(endpoint.secret, receiver.received[1]!)).toBe(true);
    expect((await deliveriesOf(org.id, endpoint.id, key))[0]).toMatchObject({
      status: 'succeeded',
      attempts: 1,
    });
  });

  it('PATCH disables an endpoint by hand and enables it again; url, description and event types change as at creation', async () => {
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, `${receiver.url}/first`, {
      key,
      event_types: ['grant.created'],
    });
    await grant(org.id, '1');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    const off = await patchEndpoint(org.id, endpoint.id, { disabled: true }, key);
    expect(off.status).toBe(200);
    expect(WebhookEndpointSchema.parse(off.body)).toMatchObject({
      disabled: true,
      disabled_reason: 'manual',
      disabled_at: expect.any(String),
      failing_since: expect.any(String),
    });
    // Messages meanwhile get their deliveries, which wait with the one being retried.
    await grant(org.id, '2');
    await advance(endpoint.id, 3600);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 0 });
    expect(receiver.received).toHaveLength(1);
    expect((await deliveriesOf(org.id, endpoint.id, key)).map((d) => [d.status, d.next_attempt_at])).toEqual([
      ['pending', null],
      ['pending', null],
    ]);
    const changed = await patchEndpoint(
      org.id,
      endpoint.id,
      {
        url: `${receiver.url}/moved`,
        description: 'Billing system',
        event_types: ['quota.exceeded', 'grant.created', 'grant.created'],
      },
      key,
    );
    expect(changed.status).toBe(200);
    // Another url starts the failing period afresh.
    expect(changed.body).toMatchObject({
      url: `${receiver.url}/moved`,
      description: 'Billing system',
      event_types: ['grant.created', 'quota.exceeded'],
      disabled: true,
      disabled_at: off.body.disabled_at,
      failing_since: null,
    });
    receiver.answer = () => 200;
    const on = await patchEndpoint(org.id, endpoint.id, { disabled: false }, key);
    expect(on.body).toMatchObject({ disabled: false, disabled_at: null, disabled_reason: null });
    expect(await deliver()).toEqual({ succeeded: 2, retrying: 0, failed: 0 });
    expect(receiver.received.map((r) => [r.path, bodyOf(r).data.amount_credits, r.status])).toEqual([
      ['/first', '1', 503],
      ['/moved', '1', 200],
      ['/moved', '2', 200],
    ]);
    expect(receiver.received.every((r) => verifySignature(endpoint.secret, r))).toBe(true);
    // Enabling restarted their attempts, as a replay does.
    expect((await deliveriesOf(org.id, endpoint.id, key)).map((d) => [d.status, d.attempts])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
    // An empty change changes nothing; null clears the description.
    expect((await patchEndpoint(org.id, endpoint.id, {}, key)).body).toEqual(on.body);
    expect(
      (await patchEndpoint(org.id, endpoint.id, { description: null }, key)).body.description,
    ).toBeNull();
    const audited = await t.db.query<{ action: string }>(
      'SELECT action FROM audit_log WHERE org_id = $1 AND target = $2 ORDER BY id',
      [org.id, endpoint.id],
    );
    expect(audited.map((a) => a.action)).toEqual([
      'webhook_endpoint.created',
      ...Array(5).fill('webhook_endpoint.updated'),
    ]);
    // The operator-wide route does the same for the operator's endpoints.
    const wide = await createEndpoint(null, `${receiver.url}/all`);
    const wideOff = await patchEndpoint(null, wide.id, { disabled: true });
    expect(wideOff.status).toBe(200);
    expect(wideOff.body).toMatchObject({ org_id: null, disabled: true, disabled_reason: 'manual' });
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${wide.id}`)).status).toBe(200);
  });
});

describe('webhooks: endpoint health', () => {
  it('disables an endpoint whose every attempt failed for 5 days, once, and sends it nothing until it is enabled', async () => {
    expect(loadConfig({}).TALLY_WEBHOOK_DISABLE_AFTER_DAYS).toBe(5);
    expect(() => loadConfig({ TALLY_WEBHOOK_DISABLE_AFTER_DAYS: '0' })).toThrow(
      'TALLY_WEBHOOK_DISABLE_AFTER_DAYS: must be a whole number from 1 to 365',
    );
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    expect(endpoint).toMatchObject({
      disabled: false,
      disabled_at: null,
      disabled_reason: null,
      failing_since: null,
    });
    await grant(org.id, '1');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    expect((await endpointOf(org.id, endpoint.id, key)).failing_since).toEqual(expect.any(String));

    // A minute short of 5 days of failures: the first message gives up, the second fails, still enabled.
    await age(endpoint.id, 5 * DAY - 60);
    await grant(org.id, '2');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 1 });
    expect((await endpointOf(org.id, endpoint.id, key)).disabled).toBe(false);

    // Past 5 days: the next failure disables it.
    await age(endpoint.id, 120);
    await grant(org.id, '3');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    const disabled = await endpointOf(org.id, endpoint.id, key);
    expect(disabled).toMatchObject({
      disabled: true,
      disabled_reason: 'failing',
      disabled_at: expect.any(String),
    });
    const failingDays =
      (Date.parse(disabled.disabled_at!) - Date.parse(disabled.failing_since!)) / 1000 / DAY;
    expect(failingDays).toBeGreaterThan(5);
    expect(failingDays).toBeLessThan(5.01);
    expect(receiver.received).toHaveLength(4);

    // The org sees why, as an alert (also sent to its webhooks: to this one once it is enabled).
    const alerts = await t.call('GET', `/v1/orgs/${org.id}/alerts?type=webhook_endpoint.disabled`, { key });
    expect(alerts.body.data).toEqual([
      expect.objectContaining({
        type: 'webhook_endpoint.disabled',
        scope: `webhook_endpoint:${endpoint.id}`,
        period_start: disabled.failing_since,
        details: {
          endpoint_id: endpoint.id,
          url: receiver.url,
          failing_since: disabled.failing_since,
          last_error: 'HTTP 503',
        },
      }),
    ]);

    // Disabled: days pass and messages come, each recorded, none sent.
    await grant(org.id, '4');
    await age(endpoint.id, 3 * DAY);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 0 });
    expect(receiver.received).toHaveLength(4);
    let log = await deliveriesOf(org.id, endpoint.id, key);
    expect(log.map((d) => [d.event_type, d.status, d.next_attempt_at])).toEqual([
      ['grant.created', 'pending', null],
      ['webhook_endpoint.disabled', 'pending', null],
      ['grant.created', 'pending', null],
      ['grant.created', 'pending', null],
      ['grant.created', 'failed', null],
    ]);
    const replay = await t.call(
      'POST',
      `/v1/orgs/${org.id}/webhook_endpoints/${endpoint.id}/deliveries/${log[4]!.id}/replay`,
      { key },
    );
    expect(replay.status).toBe(409);
    expect(replay.body).toMatchObject({ code: 'endpoint_disabled', param: 'endpoint' });
    // Disabling it by hand now keeps why and when it was disabled: it was disabled once.
    expect((await patchEndpoint(org.id, endpoint.id, { disabled: true }, key)).body).toMatchObject({
      disabled_reason: 'failing',
      disabled_at: disabled.disabled_at,
    });
    const disabledAudits = await t.db.query(
      "SELECT actor FROM audit_log WHERE org_id = $1 AND action = 'webhook_endpoint.disabled' AND target = $2",
      [org.id, endpoint.id],
    );
    expect(disabledAudits).toEqual([{ actor: 'webhook_delivery' }]);

    // Enabled: the waiting deliveries go out now, in order, signed; the failing period starts afresh.
    const enabled = await patchEndpoint(org.id, endpoint.id, { disabled: false }, key);
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({
      disabled: false,
      disabled_at: null,
      disabled_reason: null,
      failing_since: null,
    });
    receiver.answer = () => 200;
    expect(await deliver()).toEqual({ succeeded: 4, retrying: 0, failed: 0 });
    const sent = receiver.received.slice(4);
    expect(sent.map((r) => bodyOf(r).data.amount_credits ?? bodyOf(r).type)).toEqual([
      '2',
      '3',
      'webhook_endpoint.disabled',
      '4',
    ]);
    expect(sent.every((r) => verifySignature(endpoint.secret, r))).toBe(true);
    log = await deliveriesOf(org.id, endpoint.id, key);
    expect(log.map((d) => [d.status, d.attempts])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
      ['succeeded', 1],
      ['succeeded', 1],
      ['failed', 2],
    ]);
  });

  it('a success starts the failing period again: 6 days of failures around it do not disable the endpoint', async () => {
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await grant(org.id, '1');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    await age(endpoint.id, 3 * DAY);
    receiver.answer = () => 200;
    expect(await deliver()).toEqual({ succeeded: 1, retrying: 0, failed: 0 });
    expect((await endpointOf(org.id, endpoint.id, key)).failing_since).toBeNull();

    receiver.answer = () => 503;
    await grant(org.id, '2');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    // 6 days after the first failure, 3 after the success.
    await age(endpoint.id, 3 * DAY);
    await grant(org.id, '3');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 1 });
    expect((await endpointOf(org.id, endpoint.id, key)).disabled).toBe(false);
    // 5 days after the success, it is.
    await age(endpoint.id, 2 * DAY + 60);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 1 });
    expect(await endpointOf(org.id, endpoint.id, key)).toMatchObject({
      disabled: true,
      disabled_reason: 'failing',
    });
  });

  it('disables an operator-wide endpoint the same way, audited under the operator, with no org alerted', async () => {
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const wide = await createEndpoint(null, receiver.url, { event_types: ['grant.created'] });
    await grant(org.id, '1');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    await age(wide.id, 5 * DAY + 60);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 1 });
    const list = await t.call('GET', '/v1/webhook_endpoints?limit=100');
    expect(list.body.data.find((e: { id: string }) => e.id === wide.id)).toMatchObject({
      disabled: true,
      disabled_reason: 'failing',
    });
    const audited = await t.db.query(
      "SELECT org_id FROM audit_log WHERE action = 'webhook_endpoint.disabled' AND target = $1",
      [wide.id],
    );
    expect(audited).toEqual([{ org_id: 'operator' }]);
    expect((await t.call('GET', `/v1/orgs/${org.id}/alerts`, { key })).body.data).toEqual([]);
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${wide.id}`)).status).toBe(200);
  });
});

describe('webhooks: errors', () => {
  it('a receiver that is down for a while gets every delivery afterwards, in order, each once', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    for (const amount of ['1', '2', '3']) await grant(org.id, amount);

    // Down: 503 twice.
    receiver.answer = () => 503;
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    let log = await deliveriesOf(org.id, endpoint.id, key); // newest first
    expect(log.map((d) => [d.status, d.attempts, d.last_status_code])).toEqual([
      ['pending', 0, null],
      ['pending', 0, null],
      ['pending', 1, 503],
    ]);
    const waited = (d: (typeof log)[number]) =>
      (Date.parse(d.next_attempt_at!) - Date.parse(d.last_attempt_at!)) / 1000;
    expect(waited(log[2]!)).toBeGreaterThanOrEqual(3.5);
    expect(waited(log[2]!)).toBeLessThanOrEqual(6.5);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 0 }); // not due yet
    await makeDue(endpoint.id);
    await deliver();
    log = await deliveriesOf(org.id, endpoint.id, key);
    expect(log[2]).toMatchObject({ attempts: 2, last_error: 'HTTP 503' });
    expect(waited(log[2]!)).toBeGreaterThanOrEqual(23);
    expect(waited(log[2]!)).toBeLessThanOrEqual(37);

    // Gone: the kept-alive connection breaks, then connections are refused.
    const port = receiver.port;
    await receiver.close();
    await makeDue(endpoint.id);
    await deliver();
    await makeDue(endpoint.id);
    await deliver();
    log = await deliveriesOf(org.id, endpoint.id, key);
    expect(log[2]).toMatchObject({ attempts: 4, last_status_code: null, status: 'pending' });
    expect(log[2]!.last_error).toContain('ECONNREFUSED');
    expect(log.slice(0, 2).every((d) => d.attempts === 0)).toBe(true);

    // Back.
    const back = await startReceiver(port);
    await makeDue(endpoint.id);
    expect(await deliver()).toEqual({ succeeded: 3, retrying: 0, failed: 0 });
    expect(back.received.map((r) => bodyOf(r).data.amount_credits)).toEqual(['1', '2', '3']);
    expect(new Set(back.received.map((r) => r.headers['webhook-id'])).size).toBe(3);
    expect(okDelivered(receiver)).toEqual([]);
    await makeDue(endpoint.id);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 0 });
    expect(back.received).toHaveLength(3);
  });

  it('gives up after 24 hours of retries, then sends the next message; a timeout and a redirect are failures', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await grant(org.id, '1');
    await grant(org.id, '2');
    receiver.answer = () => 'hang';
    expect(await deliver({ timeoutMs: 200 })).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    expect((await deliveriesOf(org.id, endpoint.id, key))[1]!.last_error).toBe('timed out');
    receiver.answer = () => 302;
    await t.db.query(
      `UPDATE webhook_deliveries SET retry_until = now() - interval '1 second', next_attempt_at = now()
        WHERE endpoint_id = $1 AND status = 'pending' AND attempts > 0`,
      [endpoint.id],
    );
    expect(await deliver()).toMatchObject({ failed: 1 });
    const log = await deliveriesOf(org.id, endpoint.id, key);
    expect(log[1]).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_status_code: 302,
      last_error: 'HTTP 302',
    });
    // The second went out once the first gave up (and failed too: the receiver redirects).
    expect(log[0]).toMatchObject({ attempts: 1, last_status_code: 302 });
  });

  it('gives a message queued behind a failing one its own 24 hours of retries, from its first attempt', async () => {
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await grant(org.id, '1');
    await grant(org.id, '2');
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    const hours = 3600;
    // An outage of 25 hours: the first gives up, the second (waiting all along) is sent only now.
    await advance(endpoint.id, 25 * hours);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 1 });
    let [second, first] = await deliveriesOf(org.id, endpoint.id, key);
    expect(first).toMatchObject({ status: 'failed', attempts: 2 });
    expect(second).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 503 });

    // 23 hours after its first attempt it is still retried; past 24 hours it fails.
    await advance(endpoint.id, 23 * hours);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
    await advance(endpoint.id, 2 * hours);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 0, failed: 1 });
    [second] = await deliveriesOf(org.id, endpoint.id, key);
    expect(second).toMatchObject({ status: 'failed', attempts: 3 });
    expect(receiver.received.map((r) => bodyOf(r).data.amount_credits)).toEqual(['1', '1', '2', '2', '2']);
  });

  it('deliveries written before retries counted from the first attempt keep at least 24 hours from theirs', async () => {
    const receiver = await startReceiver();
    receiver.answer = () => 503;
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    for (const amount of ['1', '2', '3']) await grant(org.id, amount);
    // As the earlier code left a 25-hour outage: windows from creation; the first failed an hour ago
    // and the second was first sent right then.
    await advance(endpoint.id, 25 * 3600);
    await t.db.query(
      `UPDATE webhook_deliveries d SET retry_until = created_at + interval '24 hours',
              status = CASE WHEN n.ord = 1 THEN 'failed' ELSE 'pending' END,
              attempts = CASE WHEN n.ord < 3 THEN 1 ELSE 0 END,
              last_attempt_at = CASE WHEN n.ord < 3 THEN now() - interval '1 hour' END, next_attempt_at = now()
         FROM (SELECT id, row_number() OVER (ORDER BY seq) AS ord FROM webhook_deliveries WHERE endpoint_id = $1) n
        WHERE d.id = n.id`,
      [endpoint.id],
    );
    await t.db.exec(
      readFileSync(
        new URL('../src/store/migrations/0024_webhook_retry_from_first_attempt.sql', import.meta.url),
        'utf8',
      ),
    );
    const windows = await t.db.query<{ hours_left: number | null }>(
      `SELECT extract(epoch FROM retry_until - now()) / 3600 AS hours_left FROM webhook_deliveries
        WHERE endpoint_id = $1 ORDER BY seq`,
      [endpoint.id],
    );
    expect(windows.map((w) => (w.hours_left === null ? null : Math.round(Number(w.hours_left))))).toEqual([
      -1,
      23,
      null,
    ]);
    expect(await deliver()).toEqual({ succeeded: 0, retrying: 1, failed: 0 });
  });

  it('backs off 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h, with jitter', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 12].map((n) => retryDelaySeconds(n, mid))).toEqual([
      5, 30, 120, 600, 1800, 3600, 7200, 7200,
    ]);
    expect(retryDelaySeconds(2, () => 0)).toBe(24);
    expect(retryDelaySeconds(2, () => 0.999999)).toBe(36);
    // At least 24 hours of attempts before giving up.
    let total = 0;
    let attempts = 0;
    while (total < 24 * 3600) total += retryDelaySeconds(++attempts, () => 0);
    expect(attempts).toBeGreaterThan(10);
  });

  it('refuses bad input with a 422 naming the field, and unknown ids with 404', async () => {
    const { org, key } = await createOrgWithKey(t);
    const bad = async (body: unknown) => {
      const res = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, { key, body });
      expect(res.status).toBe(422);
      return res.body.param;
    };
    expect(await bad({ url: 'ftp://example.com/hook' })).toBe('url');
    expect(await bad({ url: 'not a url' })).toBe('url');
    expect(await bad({ url: 'https://example.com', event_types: ['grant.exploded'] })).toBe('event_types[0]');
    expect(await bad({ url: 'https://example.com', secret: 'whsec_mine' })).toBe('secret');
    const endpoint = await createEndpoint(org.id, 'https://example.com/hook', { key });
    const base = `/v1/orgs/${org.id}/webhook_endpoints`;
    expect((await t.call('GET', `${base}/we_missing/deliveries`, { key })).status).toBe(404);
    expect(
      (await t.call('POST', `${base}/${endpoint.id}/deliveries/dlv_missing/replay`, { key })).status,
    ).toBe(404);
    expect((await t.call('DELETE', `${base}/${endpoint.id}`, { key })).status).toBe(200);
    expect((await t.call('DELETE', `${base}/${endpoint.id}`, { key })).status).toBe(404);
    expect((await t.call('GET', `${base}?limit=10`, { key })).body.data).toEqual([]);
  });

  it('a deleted endpoint gets nothing more and its deliveries cannot be replayed', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await grant(org.id, '1');
    await t.call('DELETE', `/v1/orgs/${org.id}/webhook_endpoints/${endpoint.id}`, { key });
    await grant(org.id, '2');
    await deliver();
    expect(receiver.received).toEqual([]);
    const [dropped] = await deliveriesOf(org.id, endpoint.id, key);
    expect(dropped).toMatchObject({ status: 'failed', last_error: 'endpoint deleted' });
    const replay = await t.call(
      'POST',
      `/v1/orgs/${org.id}/webhook_endpoints/${endpoint.id}/deliveries/${dropped!.id}/replay`,
      { key },
    );
    expect(replay.status).toBe(409);
    expect(replay.body.code).toBe('endpoint_deleted');
  });

  it('PATCH refuses bad input with a 422 naming the field, and a missing or deleted endpoint with 404', async () => {
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, 'https://example.com/hook', { key });
    const bad = async (body: unknown) => {
      const res = await patchEndpoint(org.id, endpoint.id, body, key);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return [res.body.code, res.body.param];
    };
    expect(await bad({ disabled: 'yes' })).toEqual(['invalid_field', 'disabled']);
    expect(await bad({ disabled: null })).toEqual(['invalid_field', 'disabled']);
    expect(await bad({ url: 'ftp://example.com/hook' })).toEqual(['invalid_field', 'url']);
    expect(await bad({ url: null })).toEqual(['invalid_field', 'url']);
    expect(await bad({ event_types: ['grant.exploded'] })).toEqual(['invalid_field', 'event_types[0]']);
    expect(await bad({ description: 'x'.repeat(501) })).toEqual(['invalid_field', 'description']);
    expect(await bad({ secret: 'whsec_mine' })).toEqual(['unknown_field', 'secret']);
    expect(await endpointOf(org.id, endpoint.id, key)).toEqual(WebhookEndpointSchema.parse(endpoint));
    const base = `/v1/orgs/${org.id}/webhook_endpoints`;
    const missing = await t.call('PATCH', `${base}/we_missing`, { key, body: { disabled: true } });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'not_found', param: 'endpoint' });
    expect((await t.call('DELETE', `${base}/${endpoint.id}`, { key })).status).toBe(200);
    expect((await patchEndpoint(org.id, endpoint.id, { disabled: false }, key)).status).toBe(404);
  });
});

describe('webhooks: security', () => {
  it('shows the secret only on creation, and never stores it for an idempotent replay', async () => {
    const { org, key } = await createOrgWithKey(t);
    const created = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, {
      key,
      body: { url: 'https://example.com/hook' },
      headers: { 'idempotency-key': 'create-hook-1' },
    });
    const secret = CreatedWebhookEndpointSchema.parse(created.body).secret;
    const list = await t.call('GET', `/v1/orgs/${org.id}/webhook_endpoints`, { key });
    expect(EndpointPage.parse(list.body).data).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(list.body.data[0]).not.toHaveProperty('secret');
    const replayed = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, {
      key,
      body: { url: 'https://example.com/hook' },
      headers: { 'idempotency-key': 'create-hook-1' },
    });
    expect(JSON.stringify(replayed.body)).not.toContain(secret);
    const stored = await t.db.query('SELECT response::text AS r FROM idempotency_keys WHERE key = $1', [
      'create-hook-1',
    ]);
    expect(JSON.stringify(stored)).not.toContain(secret);
    const deliveries = await t.db.query<{ payload: string }>(
      'SELECT payload::text FROM webhook_messages WHERE org_id = $1',
      [org.id],
    );
    expect(JSON.stringify(deliveries)).not.toContain(secret);
  });

  it("answers another org's key with 404 on every webhook route, and refuses roles and org keys without the right", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const endpoint = await createEndpoint(a.org.id, 'https://example.com/hook', { key: a.key });
    await grant(a.org.id, '1');
    const [delivery] = await deliveriesOf(a.org.id, endpoint.id, a.key);
    const base = `/v1/orgs/${a.org.id}/webhook_endpoints`;
    const foreign: [string, string, unknown?][] = [
      ['POST', base, { url: 'https://evil.example/hook' }],
      ['GET', base],
      ['DELETE', `${base}/${endpoint.id}`],
      ['GET', `${base}/${endpoint.id}/deliveries`],
      ['POST', `${base}/${endpoint.id}/deliveries/${delivery!.id}/replay`],
      // B's own path with A's endpoint: as missing.
      ['GET', `/v1/orgs/${b.org.id}/webhook_endpoints/${endpoint.id}/deliveries`],
      ['DELETE', `/v1/orgs/${b.org.id}/webhook_endpoints/${endpoint.id}`],
      ['POST', `/v1/orgs/${b.org.id}/webhook_endpoints/${endpoint.id}/deliveries/${delivery!.id}/replay`],
    ];
    for (const [method, path, body] of foreign) {
      const res = await t.call(method, path, { key: b.key, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain('example.com');
    }
    // The operator-wide routes are the operator's only.
    expect((await t.call('GET', '/v1/webhook_endpoints', { key: a.key })).status).toBe(403);
    expect(
      (await t.call('POST', '/v1/webhook_endpoints', { key: a.key, body: { url: 'https://x.example' } }))
        .status,
    ).toBe(403);
    // An operator-wide endpoint is not an org's: not listed, not reachable on org paths.
    const wide = await createEndpoint(null, 'https://ops.example/hook');
    expect((await t.call('GET', `${base}/${wide.id}/deliveries`, { key: a.key })).status).toBe(404);
    expect(JSON.stringify((await t.call('GET', base, { key: a.key })).body)).not.toContain(wide.id);
    // A viewer may read usage but not manage webhooks.
    const viewer = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      body: { name: 'viewer', role: 'viewer' },
    });
    expect((await t.call('GET', base, { key: viewer.body.key })).status).toBe(403);
    expect((await t.call('GET', '/v1/webhook_endpoints')).status).toBe(200);
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${wide.id}`)).status).toBe(200);
  });
  it("answers another org's key with 404 on PATCH and changes nothing; a viewer and org keys on operator routes get 403", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const endpoint = await createEndpoint(a.org.id, 'https://example.com/hook', { key: a.key });
    const foreign = await patchEndpoint(
      a.org.id,
      endpoint.id,
      { disabled: true, url: 'https://evil.example' },
      b.key,
    );
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ code: 'not_found', detail: 'Organization not found' });
    // B's own path with A's endpoint, with B's key or even the operator's: as missing.
    for (const key of [b.key, undefined]) {
      const res = await patchEndpoint(b.org.id, endpoint.id, { disabled: true }, key);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found', param: 'endpoint' });
      expect(JSON.stringify(res.body)).not.toContain('example.com');
    }
    expect((await patchEndpoint(null, endpoint.id, { disabled: true })).status).toBe(404);
    expect(await endpointOf(a.org.id, endpoint.id, a.key)).toEqual(WebhookEndpointSchema.parse(endpoint));
    const viewer = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      body: { name: 'viewer', role: 'viewer' },
    });
    expect((await patchEndpoint(a.org.id, endpoint.id, { disabled: true }, viewer.body.key)).status).toBe(
      403,
    );
    const wide = await createEndpoint(null, 'https://ops.example/hook');
    expect((await patchEndpoint(null, wide.id, { disabled: true }, a.key)).status).toBe(403);
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${wide.id}`)).status).toBe(200);
    // The owner's key may.
    expect((await patchEndpoint(a.org.id, endpoint.id, { disabled: true }, a.key)).body).toMatchObject({
      disabled: true,
    });
  });
});

describe.runIf(onServer)('webhooks: concurrency on the server', () => {
  it('two workers delivering at once never send one delivery twice, and keep each endpoint in order', async () => {
    const receiver = await startReceiver();
    // A little latency, so the workers' rounds overlap.
    receiver.answer = () => new Promise((resolve) => setTimeout(() => resolve(200), 3));
    const { org, key } = await createOrgWithKey(t);
    const endpoints = await Promise.all(
      ['e1', 'e2', 'e3'].map((p) => createEndpoint(org.id, `${receiver.url}/${p}`, { key })),
    );
    for (let n = 1; n <= 30; n++) {
      await t.db.transaction((tx) => emitWebhookEvent(tx, org.id, 'grant.created', { n }));
    }
    // Four workers at a time, again and again until nothing is left (a worker stops when every
    // due head is leased by another).
    let succeeded = 0;
    for (let round = 0; round < 50 && succeeded < 90; round++) {
      const outcomes = await Promise.all(
        [0, 1, 2, 3].map((w) => deliver({ worker: `w${round}-${w}`, batch: 2 })),
      );
      succeeded += outcomes.reduce((sum, o) => sum + o.succeeded, 0);
    }
    expect(succeeded).toBe(90);
    const pairs = receiver.received.map((r) => `${r.path} ${r.headers['webhook-id']}`);
    expect(new Set(pairs).size).toBe(90);
    expect(pairs).toHaveLength(90);
    for (const [i, e] of endpoints.entries()) {
      const got = receiver.received.filter((r) => r.path === `/e${i + 1}`);
      expect(got.map((r) => bodyOf(r).data.n)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1));
      expect(got.every((r) => verifySignature(e.secret, r))).toBe(true);
    }
  });

  it('enabling an endpoint waits for a message being written to it, then sends that message too', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await patchEndpoint(org.id, endpoint.id, { disabled: true }, key);
    let enabled = false;
    let enabling: Promise<{ status: number; body: { disabled: boolean } }> | undefined;
    await t.db.transaction(async (tx) => {
      // The message's delivery is written while the endpoint is disabled, and committed only after
      // the endpoint is being enabled.
      await emitWebhookEvent(tx, org.id, 'grant.created', { n: 1 });
      enabling = patchEndpoint(org.id, endpoint.id, { disabled: false }, key).then((res) => {
        enabled = true;
        return res;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(enabled).toBe(false);
    });
    const answer = await enabling!;
    expect(enabled).toBe(true);
    expect(answer).toMatchObject({ status: 200, body: { disabled: false } });
    expect(await deliver()).toMatchObject({ succeeded: 1 });
    expect(receiver.received.map((r) => bodyOf(r).data.n)).toEqual([1]);
  });

  it('a message written while its endpoint is being enabled goes out, not left waiting', async () => {
    const receiver = await startReceiver();
    const { org, key } = await createOrgWithKey(t);
    const endpoint = await createEndpoint(org.id, receiver.url, { key });
    await patchEndpoint(org.id, endpoint.id, { disabled: true }, key);
    let emitting: Promise<unknown> = Promise.resolve();
    await t.db.transaction(async (tx) => {
      // The endpoint held and enabled as PATCH does, not committed yet, while a message is written.
      await tx.query('SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE', [endpoint.id]);
      await tx.query(
        'UPDATE webhook_endpoints SET disabled = false, disabled_at = NULL, disabled_reason = NULL WHERE id = $1',
        [endpoint.id],
      );
      emitting = t.db.transaction((other) => emitWebhookEvent(other, org.id, 'grant.created', { n: 1 }));
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    await emitting;
    expect(await deliver()).toMatchObject({ succeeded: 1 });
    expect(receiver.received.map((r) => bodyOf(r).data.n)).toEqual([1]);
  });
});
