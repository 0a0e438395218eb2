/**
 * The issue-8 security list, where test/security.test.ts, securityExtra.test.ts and
 * embedTokens.test.ts leave gaps: the secrets they do not cover (gateway keys, embed tokens, an
 * org's own provider key) are never stored in clear nor logged, whatever route carried them; the
 * body limit answers 413 on every route family that takes a body (the JSON API, the operator
 * settings, the unauthenticated Stripe webhook, a body streamed without a length, the gateway in
 * the provider's format) and writes nothing; the web app's Content-Security-Policy allows nothing
 * but its own origin; text that looks like SQL in the gateway and price catalog fields is text.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PRICE_KEYS } from '../src/services/pricing/addModelPrice.ts';
import { ensureWebBuilt } from '../web/scripts/ensureBuilt.ts';
import { createOrgWithKey, OPERATOR_KEY, startTally, type TestTally } from './support/harness.ts';
import { tableFingerprint } from './support/writes.ts';

const CLOSED = 'http://127.0.0.1:9';
const PROVIDER_KEY = 'sk-org-own-provider-secret-4b7c9d2e1f';
const LIMIT = 2048;

let t: TestTally;
const logLines: string[] = [];

/** Runs `fn` with stdout (the JSON request log) captured. */
async function logged<T>(fn: () => Promise<T>): Promise<T> {
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    logLines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  });
  try {
    return await fn();
  } finally {
    spy.mockRestore();
  }
}

beforeAll(async () => {
  t = await logged(() =>
    startTally({
      TALLY_LOG: 'json',
      TALLY_BODY_LIMIT_BYTES: String(LIMIT),
      TALLY_SECRET_KEY: 'a-test-secret-key-of-at-least-32-characters',
      TALLY_UPSTREAM_OPENAI_URL: CLOSED,
      TALLY_UPSTREAM_ANTHROPIC_URL: CLOSED,
    }),
  );
});
afterAll(() => t?.close());

describe('secrets beyond API keys', () => {
  it('stores gateway keys, embed tokens and provider keys in no table in clear, and logs none', async () => {
    const secrets = await logged(async () => {
      const { org, key } = await createOrgWithKey(t);
      const path = `/v1/orgs/${org.id}`;
      const gatewayKey = await t.call('POST', `${path}/gateway_keys`, {
        key,
        body: { name: 'ci bot', member: 'bot', feature: 'Chat' },
        headers: { 'idempotency-key': 'gateway-key-1' },
      });
      expect(gatewayKey.status, JSON.stringify(gatewayKey.body)).toBe(201);
      const upstream = await t.call('PUT', `${path}/gateway/upstreams/openai`, {
        key,
        body: { api_key: PROVIDER_KEY },
      });
      expect(upstream.status, JSON.stringify(upstream.body)).toBe(200);
      expect(JSON.stringify(upstream.body)).not.toContain(PROVIDER_KEY);
      const member = await t.call('POST', `${path}/members`, { key, body: { external_id: 'eve' } });
      const embed = await t.call('POST', `${path}/embed_tokens`, {
        key,
        body: { member: member.body.id, role: 'viewer' },
      });
      expect(embed.status, JSON.stringify(embed.body)).toBe(201);
      const vk = gatewayKey.body.key as string;
      const token = embed.body.token as string;
      // Each secret on the routes that take it, right and wrong.
      await t.call('POST', '/gateway/openai/v1/chat/completions', { key: vk, body: { model: 'gpt-4o' } });
      await t.call('POST', '/gateway/openai/v1/chat/completions', { key: `${vk}x`, body: {} });
      await t.call('POST', '/gateway/anthropic/v1/messages', {
        key: '',
        headers: { 'x-api-key': vk, 'anthropic-version': '2023-06-01' },
        body: { model: 'claude-3-5-haiku-latest' },
      });
      await t.call('GET', '/gateway/openai/v1/models', { key: vk });
      await t.call('GET', '/v1/session', { key: token });
      await t.call('GET', `${path}/usage/summary`, { key: token });
      await t.call('GET', `${path}/usage/summary`, { key: `${token.slice(0, -3)}abc` });
      await t.app.request(new URL(embed.body.url).pathname + new URL(embed.body.url).hash);
      await t.app.request(`/embed?token=${encodeURIComponent(token)}`);
      await t.call('DELETE', `${path}/gateway_keys/${gatewayKey.body.id}`, { key });
      await t.call('POST', '/gateway/openai/v1/chat/completions', { key: vk, body: {} });
      return { vk, token, key };
    });
    const text = logLines.join('');
    expect(text.split('\n').filter((l) => l.startsWith('{"time"')).length).toBeGreaterThan(10);
    // The token's signature and body parts, and the keys without their public prefix.
    const parts = [
      secrets.vk.slice(9),
      secrets.key.slice(9),
      PROVIDER_KEY.slice(3),
      ...secrets.token.split(/[._]/).filter((p) => p.length >= 16),
    ];
    expect(parts.length).toBeGreaterThanOrEqual(4);
    for (const part of parts) expect(text, 'the log holds a secret').not.toContain(part);

    const tables = await t.db.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    for (const { tablename } of tables) {
      const rows = await t.db.query<{ x: string }>(`SELECT x::text AS x FROM "${tablename}" x`);
      for (const { x } of rows) {
        for (const part of parts) expect(x, `${tablename} holds a secret`).not.toContain(part);
      }
    }
  });
});

describe('the body limit on every route family that takes a body', () => {
  const over = (field: string) => JSON.stringify({ [field]: 'x'.repeat(LIMIT + 10) });

  it('answers 413 problem+json on the API, the operator settings and the Stripe webhook, writing nothing', async () => {
    const { org, key } = await logged(() => createOrgWithKey(t));
    const before = await tableFingerprint(t.db);
    const refusals = await logged(() =>
      Promise.all([
        t.call('POST', `/v1/orgs/${org.id}/members`, { key, raw: over('name') }),
        t.call('PATCH', `/v1/orgs/${org.id}`, { key, raw: over('name') }),
        t.call('PUT', `/v1/orgs/${org.id}/retention`, { key, raw: over('raw_event_months') }),
        t.call('PUT', '/v1/settings/invoicing', { raw: over('seller_name') }),
        t.call('POST', '/v1/webhooks/stripe', {
          key: '',
          raw: over('data'),
          headers: { 'stripe-signature': 't=1,v1=00' },
        }),
      ]),
    );
    for (const res of refusals) {
      expect(res.status, JSON.stringify(res.body)).toBe(413);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('payload_too_large');
    }
    // A body streamed without Content-Length is counted as it arrives.
    const chunk = new TextEncoder().encode(`{"events":[${'{},'.repeat(400)}`);
    const streamed = await logged(async () =>
      t.app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < 4; i++) controller.enqueue(chunk);
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit),
    );
    expect(streamed.status).toBe(413);
    expect(await tableFingerprint(t.db)).toEqual(before);
  });

  it('answers 413 on the OpenAI gateway in its own format', async () => {
    const { key } = await logged(() => createOrgWithKey(t));
    const res = await logged(() =>
      t.call('POST', '/gateway/openai/v1/chat/completions', {
        key,
        raw: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(LIMIT) }] }),
      }),
    );
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: { type: 'invalid_request_error' } });
  });
});

describe('Content-Security-Policy of the web app', () => {
  // A fresh clone has no build: make it (as the browser tests do), so the pages below are real.
  beforeAll(() => ensureWebBuilt(), 300_000);

  it('allows only its own origin for every kind of resource, no inline or eval code, no plugins', async () => {
    for (const path of ['/', '/usage', '/usage/payments', '/embed']) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy')!;
      const directives = new Map(
        csp.split(';').map((d) => {
          const [name, ...sources] = d.trim().split(/\s+/);
          return [name!, sources] as const;
        }),
      );
      expect(directives.get('default-src')).toEqual(["'none'"]);
      expect(directives.get('base-uri')).toEqual(["'none'"]);
      for (const name of ['script-src', 'style-src', 'connect-src', 'font-src', 'form-action']) {
        expect(directives.get(name), name).toEqual(["'self'"]);
      }
      expect(directives.get('img-src')).toEqual(["'self'", 'data:']);
      // Plugins and workers fall back to default-src 'none'.
      for (const name of ['object-src', 'worker-src', 'child-src']) expect(directives.has(name)).toBe(false);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|unsafe-hashes|strict-dynamic|https?:|\bblob:/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });
});

describe('text that looks like SQL in the gateway and catalog fields', () => {
  const NASTY = ["x'); DROP TABLE gateway_keys;--", "' OR 1=1 --", '1; SELECT pg_sleep(10)'];

  it('is stored and shown verbatim', async () => {
    const { org, key } = await logged(() => createOrgWithKey(t));
    const created = await logged(() =>
      t.call('POST', `/v1/orgs/${org.id}/gateway_keys`, {
        key,
        body: { name: NASTY[0], member: NASTY[1], feature: NASTY[2], project: NASTY[1] },
      }),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const listed = await logged(() => t.call('GET', `/v1/orgs/${org.id}/gateway_keys`, { key }));
    expect(listed.body.data).toEqual([
      expect.objectContaining({ name: NASTY[0], member: NASTY[1], feature: NASTY[2], project: NASTY[1] }),
    ]);
    const model = await logged(() =>
      t.call('POST', '/v1/models', {
        key: OPERATOR_KEY,
        body: {
          provider: 'acme',
          model: NASTY[0],
          name: NASTY[1],
          prices: Object.fromEntries(PRICE_KEYS.map((k) => [k, '1'])),
        },
      }),
    );
    expect(model.status, JSON.stringify(model.body)).toBeLessThan(300);
    const [stored] = await t.db.query<{ model: string; name: string }>(
      "SELECT model, name FROM provider_prices WHERE provider = 'acme'",
    );
    expect(stored).toEqual({ model: NASTY[0], name: NASTY[1] });
    const [{ n }] = (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM gateway_keys')) as [
      { n: number },
    ];
    expect(n).toBeGreaterThanOrEqual(1);
  });
});
