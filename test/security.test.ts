/**
 * Tenants, roles and keys: another org is invisible (404, no data, nothing changed), roles limit
 * what a key may do, expired/revoked/garbled keys get a 401 saying why, secrets are stored hashed
 * and never logged, and text that looks like SQL is only text.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES } from '../src/domain/permissions.ts';
import { IngestAnswer } from '../src/http/routes/events.ts';
import { ApiKeySchema } from '../src/http/routes/keys.ts';
import { MemberSchema, WorkspaceSchema } from '../src/http/routes/members.ts';
import { OrgSchema } from '../src/http/routes/orgs.ts';
import { ProblemSchema, pageOf } from '../src/http/schemas.ts';
import { authenticate, forgetApiKey } from '../src/services/keys/authenticate.ts';
import { PRICE_KEYS } from '../src/services/pricing/addModelPrice.ts';
import type { Queryable } from '../src/store/db.ts';
import {
  createOrgWithKey,
  freshIdempotencyKey,
  minutesAgo,
  OPERATOR_KEY,
  type Response,
  startTally,
  type TestTally,
} from './support/harness.ts';

let t: TestTally;
/** Org A calls; org B is the victim, with data of every kind. */
let A: { org: { id: string }; key: string; keyId: string };
let B: { org: { id: string; name: string }; key: string; keyId: string; memberId: string; eventId: string };

const event = (overrides: Record<string, unknown> = {}) => ({
  id: 'evt-1',
  member: 'alice',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(1),
  usage: { input_tokens: 1000, output_tokens: 200 },
  ...overrides,
});

beforeAll(async () => {
  t = await startTally();
  A = await createOrgWithKey(t, { name: 'Org A' });
  const b = await createOrgWithKey(t, {
    name: 'Victim Org B',
    currency: 'USD',
    timezone: 'America/New_York',
  });
  const member = await t.call('POST', `/v1/orgs/${b.org.id}/members`, {
    key: b.key,
    body: { external_id: 'b-secret-user', name: 'Bea Victim', email: 'bea@victim.example' },
  });
  await t.call('POST', `/v1/orgs/${b.org.id}/workspaces`, {
    key: b.key,
    body: { external_id: 'b-ws', name: 'B workspace' },
  });
  const ingest = await t.call('POST', '/v1/events', {
    key: b.key,
    body: {
      events: [
        event({ id: 'b-event', member: 'b-secret-user', workspace: 'b-ws', conversation_id: 'b-conv' }),
      ],
    },
  });
  expect(ingest.body.results[0].status, JSON.stringify(ingest.body)).toBe('accepted');
  B = { ...b, memberId: member.body.id, eventId: 'b-event' };
});
afterAll(() => t?.close());

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await t.db.query<{ n: number }>(sql, params);
  return row!.n;
}

function expectProblem(res: Response, status: number, code?: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = ProblemSchema.parse(res.body);
  if (code) expect(body.code).toBe(code);
  return body;
}

/** Every row that belongs to an org, in every table with an org_id column, plus the org itself. */
async function orgFingerprint(orgId: string): Promise<Record<string, string>> {
  const tables = await t.db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns
      WHERE table_schema = 'public' AND column_name = 'org_id' ORDER BY table_name`,
  );
  const out: Record<string, string> = {};
  for (const { table_name } of tables) {
    const [row] = await t.db.query<{ n: number; h: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM "${table_name}" x WHERE org_id = $1`,
      [orgId],
    );
    out[table_name] = `${row!.n}:${row!.h}`;
  }
  const [org] = await t.db.query<{ h: string }>('SELECT md5(x::text) AS h FROM orgs x WHERE id = $1', [
    orgId,
  ]);
  out.orgs = org!.h;
  return out;
}

/** Strings of org B that must never appear in an answer to org A. */
const bSecrets = () => [
  B.org.id,
  B.org.name,
  B.memberId,
  B.keyId,
  'b-secret-user',
  'Bea Victim',
  'bea@victim',
  'b-ws',
];

function expectNoDataOf(res: Response) {
  const text = JSON.stringify(res.body);
  for (const s of bSecrets().slice(1)) expect(text).not.toContain(s);
}

describe('tenant isolation', () => {
  it("answers 404 to org A's key on every org-scoped route of org B, with no data and no change", async () => {
    const doc = (await t.call('GET', '/openapi.json', { key: '' })).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    // Real ids of B's records, so the operator's control call reaches each route's own answer.
    const endpoint = await t.call('POST', `/v1/orgs/${B.org.id}/webhook_endpoints`, {
      body: { url: 'https://example.com/hook' },
    });
    expect(endpoint.status).toBe(201);
    // A completed top-up of B (the local provider: no Stripe keys here), for the payment routes.
    const checkout = await t.call('POST', `/v1/orgs/${B.org.id}/checkout_sessions`, {
      body: { amount: '10' },
    });
    const paid = await t.call('POST', `${new URL(checkout.body.url).pathname}/confirm`, { key: '' });
    expect(paid.body.status).toBe('completed');
    const ids: Record<string, string> = {
      org: B.org.id,
      member: B.memberId,
      key: B.keyId,
      endpoint: endpoint.body.id,
      payment: checkout.body.id,
      date: '2026-01-01',
      conversation: 'b-conv',
    };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path.includes('{org}'))
      .flatMap(([path, methods]) =>
        Object.keys(methods)
          .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
          .map(
            (m) => [m.toUpperCase(), path.replace(/\{(\w+)\}/g, (_, p: string) => ids[p] ?? 'x')] as const,
          ),
      );
    // The org, members, workspaces and keys routes at least; new org-scoped routes join on their own.
    expect(routes.length).toBeGreaterThanOrEqual(11);
    const before = await orgFingerprint(B.org.id);
    for (const [method, path] of routes) {
      const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
      const res = await t.call(method, path, { key: A.key, body });
      const problem = expectProblem(res, 404, 'not_found');
      expect(problem.detail, `${method} ${path}`).toBe('Organization not found');
      expectNoDataOf(res);
    }
    expect(await orgFingerprint(B.org.id)).toEqual(before);

    // The same routes answer the operator, so the 404s above are isolation, not broken routes.
    // Only the status is read: a live route (server-sent events) would stream for minutes.
    for (const [method, path] of routes.filter(([m]) => m === 'GET')) {
      const res = await t.app.request(path, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
      const detail = res.status < 400 ? '' : await res.text();
      await res.body?.cancel();
      expect(res.status, `${method} ${path}: ${detail}`).toBeLessThan(400);
    }
  });

  it('answers another org exactly like a missing one', async () => {
    const other = await t.call('GET', `/v1/orgs/${B.org.id}`, { key: A.key });
    const missing = await t.call('GET', '/v1/orgs/org_00000000000000000000', { key: A.key });
    const strip = ({ request_id: _, ...rest }: Record<string, unknown>) => rest;
    expect(strip(other.body)).toEqual(strip(missing.body));
    expect(other.status).toBe(missing.status);
  });

  it("refuses org B's members and keys through org A's own path", async () => {
    const before = await orgFingerprint(B.org.id);
    const a = `/v1/orgs/${A.org.id}`;
    for (const [method, path, body] of [
      ['PATCH', `${a}/members/${B.memberId}`, { name: 'pwned' }],
      ['DELETE', `${a}/members/${B.memberId}`, undefined],
      ['POST', `${a}/members/${B.memberId}/erase`, undefined],
      ['DELETE', `${a}/api_keys/${B.keyId}`, undefined],
    ] as const) {
      const res = await t.call(method, path, { key: A.key, body });
      expectProblem(res, 404, 'not_found');
      expectNoDataOf(res);
    }
    expect(await orgFingerprint(B.org.id)).toEqual(before);
    // B's key still works after A tried to revoke it.
    expect((await t.call('GET', `/v1/orgs/${B.org.id}`, { key: B.key })).status).toBe(200);
  });

  it("refuses events for org B sent with org A's key, storing nothing", async () => {
    const before = await orgFingerprint(B.org.id);
    const beforeA = await orgFingerprint(A.org.id);
    const res = await t.call('POST', '/v1/events', {
      key: A.key,
      body: { events: [event({ id: 'a-ok' }), event({ id: 'sneaky', org_id: B.org.id })] },
    });
    const problem = expectProblem(res, 404, 'not_found');
    expect(problem.param).toBe('events[1].org_id');
    expect(await orgFingerprint(B.org.id)).toEqual(before);
    expect(await orgFingerprint(A.org.id)).toEqual(beforeA);
  });

  it('lists only its own org to an org key, and the same event id stays separate per org', async () => {
    const list = await t.call('GET', '/v1/orgs', { key: A.key });
    expect(list.status).toBe(200);
    expect(list.body.data.map((o: { id: string }) => o.id)).toEqual([A.org.id]);
    // "b-event" is B's event id; A may use the same id for its own event.
    const res = await t.call('POST', '/v1/events', {
      key: A.key,
      body: { events: [event({ id: B.eventId })] },
    });
    expect(res.body.results[0].status).toBe('accepted');
    const rows = await t.db.query<{ org_id: string }>(
      'SELECT org_id FROM events WHERE id = $1 ORDER BY org_id',
      [B.eventId],
    );
    expect(rows.map((r) => r.org_id).sort()).toEqual([A.org.id, B.org.id].sort());
  });
});

describe('operator-only actions', () => {
  it('refuses an org key creating orgs or setting prices, markup or FX (403), writing nothing', async () => {
    const attempts: [string, string, unknown][] = [
      ['POST', '/v1/orgs', { name: 'Mine now', currency: 'EUR', timezone: 'UTC' }],
      [
        'POST',
        '/v1/prices',
        {
          provider: 'openai',
          model: 'gpt-4o',
          component: 'input',
          price: '0',
          unit: 'per_1m_tokens',
          currency: 'EUR',
        },
      ],
      // Every price key is given: the route's schema currently demands all of them (see the report).
      [
        'POST',
        '/v1/models',
        {
          provider: 'acme',
          model: 'free-model',
          prices: Object.fromEntries(PRICE_KEYS.map((k) => [k, '0'])),
        },
      ],
      ['PUT', '/v1/settings/pricing', { default_markup: '0' }],
      ['PUT', '/v1/fx_rates/EUR', { rate: '0.0001' }],
    ];
    const orgsBefore = await count('SELECT count(*)::int AS n FROM orgs');
    for (const [method, path, body] of attempts) {
      const problem = expectProblem(await t.call(method, path, { key: A.key, body }), 403, 'forbidden');
      expect(problem.detail).toMatch(/operator/);
    }
    const orgsAfter = await count('SELECT count(*)::int AS n FROM orgs');
    expect(orgsAfter).toBe(orgsBefore);
    const sell = await t.db.query('SELECT 1 FROM sell_prices');
    expect(sell).toHaveLength(0);
    const models = await t.db.query("SELECT 1 FROM provider_prices WHERE model = 'free-model'");
    expect(models).toHaveLength(0);
    // The operator may do it (so the 403s are about the key, not a broken route).
    const created = await t.call('POST', '/v1/orgs', {
      body: { name: 'By operator', currency: 'EUR', timezone: 'UTC' },
    });
    expect(created.status).toBe(201);
  });

  it('refuses an org key changing its own billing terms', async () => {
    for (const body of [
      { credit_value: '1' },
      { plan_allowance_credits: '1000000' },
      { billing_mode: 'byok' },
    ]) {
      const problem = expectProblem(
        await t.call('PATCH', `/v1/orgs/${A.org.id}`, { key: A.key, body }),
        403,
        'forbidden',
      );
      expect(problem.param).toBe(Object.keys(body)[0]);
    }
    const ok = await t.call('PATCH', `/v1/orgs/${A.org.id}`, { key: A.key, body: { name: 'Org A renamed' } });
    expect(ok.status).toBe(200);
  });
});

describe('roles', () => {
  const keys: Partial<Record<(typeof ROLES)[number], string>> = {};
  let embedMember = '';
  beforeAll(async () => {
    embedMember = (
      await t.call('POST', `/v1/orgs/${A.org.id}/members`, { key: A.key, body: { external_id: 'embedded' } })
    ).body.id;
    for (const role of ROLES) {
      const res = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
        key: A.key,
        body: { name: role, role },
      });
      expect(res.status).toBe(201);
      keys[role] = res.body.key;
    }
  });

  const a = () => `/v1/orgs/${A.org.id}`;
  let n = 0;
  /** Each case: what it needs, and the request. */
  const cases = (): [string, string, string, unknown][] => [
    ['keys:write', 'POST', `${a()}/api_keys`, { name: `k${n++}` }],
    ['keys:write', 'GET', `${a()}/api_keys`, undefined],
    ['members:write', 'POST', `${a()}/members`, { external_id: `m${n++}` }],
    ['members:write', 'POST', `${a()}/workspaces`, { external_id: `w${n++}`, name: 'W' }],
    ['members:read', 'GET', `${a()}/members`, undefined],
    ['org:read', 'GET', a(), undefined],
    ['org:update', 'PATCH', a(), { name: 'Org A' }],
    ['events:write', 'POST', '/v1/events', { events: [event({ id: `r${n++}` })] }],
    ['usage:read', 'GET', `${a()}/usage/summary`, undefined],
    ['usage:read', 'GET', `${a()}/balance`, undefined],
    ['billing:purchase', 'GET', `${a()}/payments`, undefined],
    ['billing:purchase', 'POST', `${a()}/checkout_sessions`, { amount: '10' }],
    ['limits:write', 'PUT', `${a()}/limits`, { alert_threshold: null, allowed_limit: null }],
    ['webhooks:write', 'GET', `${a()}/webhook_endpoints`, undefined],
    ['embed:create', 'POST', `${a()}/embed_tokens`, { member: embedMember, role: 'viewer' }],
  ];

  it('has a case for every permission of the role table', () => {
    expect(new Set(cases().map(([permission]) => permission))).toEqual(new Set(Object.keys(PERMISSIONS)));
  });

  it('follows the permission table for every role', async () => {
    for (const role of ROLES) {
      for (const [permission, method, path, body] of cases()) {
        const res = await t.call(method, path, { key: keys[role], body });
        const allowed = ROLE_PERMISSIONS[role].includes(permission as never);
        if (allowed) {
          expect(res.status, `${role} ${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
        } else {
          const problem = expectProblem(res, 403, 'forbidden');
          expect(problem.detail).toContain(role);
        }
      }
    }
  });

  it("refuses a hold's increments, capture and void to a role that may not send usage", async () => {
    const hold = await t.call('POST', '/v1/authorizations', {
      key: keys.member,
      body: {
        member: 'u1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        estimate: { credits: '5' },
      },
    });
    expect(hold.body).toMatchObject({ approved: true });
    const path = `/v1/authorizations/${hold.body.id}`;
    for (const role of ['viewer', 'billing'] as const) {
      expectProblem(
        await t.call('POST', `${path}/increments`, {
          headers: freshIdempotencyKey(),
          key: keys[role],
          body: { usage: { output_tokens: 100_000 } },
        }),
        403,
        'forbidden',
      );
      expectProblem(
        await t.call('POST', `${path}/capture`, { key: keys[role], body: { usage: { output_tokens: 1 } } }),
        403,
        'forbidden',
      );
      expectProblem(await t.call('POST', `${path}/void`, { key: keys[role] }), 403, 'forbidden');
    }
    const voided = await t.call('POST', `${path}/void`, { key: keys.member });
    expect(voided.body).toMatchObject({ status: 'voided', charged_credits: '0' });
  });

  it('spells out the matrix the product relies on', async () => {
    const memberPath = `${a()}/members`;
    // viewer: reads only.
    expectProblem(await t.call('POST', `${a()}/api_keys`, { key: keys.viewer, body: { name: 'v' } }), 403);
    expectProblem(await t.call('POST', memberPath, { key: keys.viewer, body: { external_id: 'v1' } }), 403);
    expect((await t.call('GET', memberPath, { key: keys.viewer })).status).toBe(200);
    // member: may send events, not manage people or keys.
    const sent = await t.call('POST', '/v1/events', {
      key: keys.member,
      body: { events: [event({ id: 'by-member' })] },
    });
    expect(sent.status).toBe(200);
    expect(sent.body.results[0].status).toBe('accepted');
    expectProblem(await t.call('POST', memberPath, { key: keys.member, body: { external_id: 'm1' } }), 403);
    // billing: no member management.
    const target = (await t.call('POST', memberPath, { key: A.key, body: { external_id: 'target' } })).body
      .id;
    const before = await orgFingerprint(A.org.id);
    expectProblem(await t.call('POST', memberPath, { key: keys.billing, body: { external_id: 'b1' } }), 403);
    expectProblem(
      await t.call('PATCH', `${memberPath}/${target}`, { key: keys.billing, body: { role: 'owner' } }),
      403,
    );
    expectProblem(await t.call('DELETE', `${memberPath}/${target}`, { key: keys.billing }), 403);
    expectProblem(await t.call('POST', `${memberPath}/${target}/erase`, { key: keys.billing }), 403);
    expectProblem(
      await t.call('POST', '/v1/events', { key: keys.billing, body: { events: [event({ id: 'bill' })] } }),
      403,
    );
    expect(await orgFingerprint(A.org.id)).toEqual(before);
  });
});

describe('keys', () => {
  it('refuses a missing or garbled Authorization header with 401 and a challenge', async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` },
      { authorization: `Token ${A.key}` },
      { authorization: `Bearer ${A.key} extra` },
      { authorization: A.key },
    ];
    for (const headers of cases) {
      const res = await t.call('GET', '/v1/orgs', { key: '', headers });
      const problem = expectProblem(res, 401, 'unauthorized');
      expect(problem.detail).toMatch(/Authorization: Bearer/);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    for (const wrong of [
      'tally_sk_notakey',
      `${A.key}x`,
      'tally_op_guess',
      OPERATOR_KEY.slice(0, -1),
      "'OR'1'='1'--",
    ]) {
      const problem = expectProblem(await t.call('GET', '/v1/orgs', { key: wrong }), 401, 'unauthorized');
      expect(problem.detail).toMatch(/not valid/);
    }
  });

  it('refuses a revoked key with 401 saying it was revoked', async () => {
    const created = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'to revoke' },
    });
    const secret = created.body.key as string;
    expect((await t.call('GET', `/v1/orgs/${A.org.id}`, { key: secret })).status).toBe(200);
    const revoked = await t.call('DELETE', `/v1/orgs/${A.org.id}/api_keys/${created.body.id}`, {
      key: A.key,
    });
    expect(revoked.status).toBe(200);
    expect(ApiKeySchema.strict().parse(revoked.body).revoked_at).not.toBeNull();
    const res = await t.call('GET', `/v1/orgs/${A.org.id}`, { key: secret });
    const problem = expectProblem(res, 401, 'unauthorized');
    expect(problem.detail).toMatch(/revoked/);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    // A key may revoke itself, and is refused from then on.
    const self = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'self' },
    });
    expect(
      (await t.call('DELETE', `/v1/orgs/${A.org.id}/api_keys/${self.body.id}`, { key: self.body.key }))
        .status,
    ).toBe(200);
    expectProblem(await t.call('GET', '/v1/orgs', { key: self.body.key }), 401);
    // Nor may it write: no event and no hold is stored under a revoked key.
    await expectNoWrites(A.org.id, secret);
  });

  it('reads a key once for requests arriving together, and never keeps a read begun before a revocation', async () => {
    const created = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'busy' },
    });
    const secret = created.body.key as string;
    let reads = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    /** t.db, with every api_keys read counted and held at the gate. */
    const counting: Queryable = {
      query: async (sql, params, statement) => {
        if (sql.includes('FROM api_keys')) {
          reads++;
          await gate;
        }
        return t.db.query(sql, params, statement);
      },
      exec: (sql) => t.db.exec(sql),
    };
    const together = Array.from({ length: 20 }, () => authenticate(counting, secret));
    release();
    for (const principal of await Promise.all(together)) expect(principal.id).toBe(created.body.id);
    expect(reads).toBe(1);

    // A read under way when the key is revoked through this process answers its caller but is not
    // kept, and requests after the revocation do not join it.
    forgetApiKey(created.body.id);
    let releaseSlow = () => {};
    const slowGate = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    let readDone = () => {};
    const hasRead = new Promise<void>((resolve) => {
      readDone = resolve;
    });
    const slow: Queryable = {
      query: async (sql, params, statement) => {
        const rows = await t.db.query(sql, params, statement);
        readDone();
        await slowGate;
        return rows as never;
      },
      exec: (sql) => t.db.exec(sql),
    };
    const begunBefore = authenticate(slow, secret);
    await hasRead;
    expect(
      (await t.call('DELETE', `/v1/orgs/${A.org.id}/api_keys/${created.body.id}`, { key: A.key })).status,
    ).toBe(200);
    const after = authenticate(t.db, secret);
    releaseSlow();
    expect((await begunBefore).id).toBe(created.body.id);
    await expect(after).rejects.toThrow(/revoked/);
    await expect(authenticate(t.db, secret)).rejects.toThrow(/revoked/);
  });

  it('refuses an expired key with 401 saying it expired', async () => {
    const expiresAt = new Date(Date.now() + 2_000).toISOString();
    const created = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'short-lived', expires_at: expiresAt },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.expires_at).toBe(expiresAt);
    expect((await t.call('GET', '/v1/orgs', { key: created.body.key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) - Date.now()) + 300));
    const problem = expectProblem(
      await t.call('GET', '/v1/orgs', { key: created.body.key }),
      401,
      'unauthorized',
    );
    expect(problem.detail).toMatch(/expired/);
    await expectNoWrites(A.org.id, created.body.key);
  });

  it('stores keys hashed: no table holds a secret, even after an Idempotency-Key replay', async () => {
    const created = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'hashed' },
      headers: { 'idempotency-key': 'create-hashed-key' },
    });
    expect(created.status).toBe(201);
    const secret = created.body.key as string;
    expect(secret).toMatch(/^tally_sk_\w{20,}$/);
    expect(created.body.key_hint).toBe(secret.slice(-4));
    const [row] = await t.db.query<{ key_hash: string }>('SELECT key_hash FROM api_keys WHERE id = $1', [
      created.body.id,
    ]);
    expect(row!.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.key_hash).not.toContain(secret.slice(9, 30));

    // The replay does not hand out the secret again; it names the key made the first time.
    const replay = await t.call('POST', `/v1/orgs/${A.org.id}/api_keys`, {
      key: A.key,
      body: { name: 'hashed' },
      headers: { 'idempotency-key': 'create-hashed-key' },
    });
    const problem = expectProblem(replay, 409, 'idempotency_secret_withheld');
    expect(problem.detail).toContain(created.body.id);
    expect(JSON.stringify(replay.body)).not.toContain(secret);
    const n = await count("SELECT count(*)::int AS n FROM api_keys WHERE name = 'hashed'");
    expect(n).toBe(1);

    // Whatever table, whatever column: no secret shown so far is stored in clear.
    const secrets = [secret, A.key, B.key, OPERATOR_KEY];
    const tables = await t.db.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    let rows = 0;
    for (const { tablename } of tables) {
      const texts = await t.db.query<{ x: string }>(`SELECT x::text AS x FROM "${tablename}" x`);
      rows += texts.length;
      for (const { x } of texts) {
        for (const s of secrets) expect(x, `${tablename} holds a secret`).not.toContain(s.slice(9));
      }
    }
    expect(rows).toBeGreaterThan(10);
  });

  it('never writes a secret to the log', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    });
    const logged = await startTally({ TALLY_LOG: 'json' });
    try {
      const { org, key, keyId } = await createOrgWithKey(logged);
      const viewer = await logged.call('POST', `/v1/orgs/${org.id}/api_keys`, {
        key,
        body: { name: 'viewer', role: 'viewer' },
        headers: { 'idempotency-key': 'log-viewer' },
      });
      await logged.call('POST', '/v1/events', { key, body: { events: [event()] } });
      await logged.call('POST', '/v1/events', { key: viewer.body.key, body: { events: [event()] } });
      await logged.call('GET', `/v1/orgs/${org.id}?key=${key}`, { key: 'tally_sk_guessedguessedguessed' });
      await logged.call('DELETE', `/v1/orgs/${org.id}/api_keys/${viewer.body.id}`, { key });
      await logged.call('GET', '/v1/orgs', { key: viewer.body.key });
      await logged.call('GET', '/v1/orgs', { headers: { authorization: `Basic ${key}` }, key: '' });
      const text = lines.join('');
      const records = text
        .split('\n')
        .filter((l) => l.startsWith('{"time"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      // The log does see every request and who made it, by key id.
      expect(records.length).toBeGreaterThanOrEqual(8);
      expect(records.some((r) => r.principal === keyId)).toBe(true);
      expect(records.some((r) => r.status === 401)).toBe(true);
      for (const secret of [key, viewer.body.key as string, OPERATOR_KEY, 'tally_sk_guessedguessedguessed']) {
        expect(text).not.toContain(secret.slice(9));
      }
    } finally {
      spy.mockRestore();
      await logged.close();
    }
  });
});

describe('text that looks like SQL', () => {
  const nasty = [
    "Robert'); DROP TABLE orgs;--",
    "' OR '1'='1",
    '"; DELETE FROM events; --',
    '$1 $2 \\x00 %s %n {{7*7}} $' + '{process.exit()}',
    '1; SELECT pg_sleep(10); --',
  ];

  it('stores and returns it verbatim, and every answer parses with its schema', async () => {
    const org = await t.call('POST', '/v1/orgs', {
      body: { name: nasty[0], external_id: nasty[1], currency: 'EUR', timezone: 'UTC' },
    });
    expect(org.status, JSON.stringify(org.body)).toBe(201);
    const orgView = OrgSchema.strict().parse(org.body);
    expect(orgView).toMatchObject({ name: nasty[0], external_id: nasty[1] });
    expect(OrgSchema.strict().parse((await t.call('GET', `/v1/orgs/${orgView.id}`, {})).body).name).toBe(
      nasty[0],
    );
    const page = pageOf(OrgSchema.strict()).parse((await t.call('GET', '/v1/orgs?limit=1000', {})).body);
    expect(page.data.some((o) => o.name === nasty[0])).toBe(true);

    const key = await t.call('POST', `/v1/orgs/${orgView.id}/api_keys`, { body: { name: nasty[2] } });
    const keyView = ApiKeySchema.extend({ key: ApiKeySchema.shape.name }).strict().parse(key.body);
    expect(keyView.name).toBe(nasty[2]);
    const keys = pageOf(ApiKeySchema.strict()).parse(
      (await t.call('GET', `/v1/orgs/${orgView.id}/api_keys`, { key: keyView.key })).body,
    );
    expect(keys.data.map((k) => k.name)).toEqual([nasty[2]]);

    const created = await t.call('POST', `/v1/orgs/${orgView.id}/members`, {
      key: keyView.key,
      body: { external_id: nasty[3], name: nasty[4], email: "o'hara@example.com" },
    });
    const member = MemberSchema.strict().parse(created.body);
    expect(member).toMatchObject({ external_id: nasty[3], name: nasty[4], email: "o'hara@example.com" });
    const patched = await t.call('PATCH', `/v1/orgs/${orgView.id}/members/${member.id}`, {
      key: keyView.key,
      body: { name: nasty[0] },
    });
    expect(MemberSchema.strict().parse(patched.body).name).toBe(nasty[0]);
    const ws = await t.call('POST', `/v1/orgs/${orgView.id}/workspaces`, {
      key: keyView.key,
      body: { external_id: nasty[1], name: nasty[2] },
    });
    expect(WorkspaceSchema.strict().parse(ws.body)).toMatchObject({ external_id: nasty[1], name: nasty[2] });

    const ingest = await t.call('POST', '/v1/events', {
      key: keyView.key,
      body: {
        events: nasty.map((s, i) =>
          event({
            id: s,
            member: nasty[(i + 1) % nasty.length],
            feature: s,
            workspace: s,
            metadata: { [s]: s },
          }),
        ),
      },
    });
    expect(ingest.status, JSON.stringify(ingest.body)).toBe(200);
    const answer = IngestAnswer.parse(ingest.body);
    expect(answer.results.map((r) => [r.id, r.status])).toEqual(nasty.map((s) => [s, 'accepted']));
    const stored = await t.db.query<{
      id: string;
      feature: string;
      workspace: string;
      metadata: Record<string, string>;
    }>('SELECT id, feature, workspace, metadata FROM events WHERE org_id = $1', [orgView.id]);
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    expect(stored.sort(byId)).toEqual(
      nasty.map((s) => ({ id: s, feature: s, workspace: s, metadata: { [s]: s } })).sort(byId),
    );
    const members = pageOf(MemberSchema.strict()).parse(
      (await t.call('GET', `/v1/orgs/${orgView.id}/members?limit=100`, { key: keyView.key })).body,
    );
    expect(new Set(members.data.map((m) => m.external_id))).toEqual(new Set(nasty));

    // Every table is still there and still holds the other orgs' data.
    const n = await count('SELECT count(*)::int AS n FROM events WHERE org_id = $1', [B.org.id]);
    expect(n).toBe(1);
    expect(
      pageOf(MemberSchema.strict()).parse((await t.call('GET', `/v1/orgs/${B.org.id}/members`, {})).body)
        .data,
    ).toHaveLength(1);
  });
});

/** A refused key sends no event and places no hold: 401 each, and the org's events and holds are unchanged. */
async function expectNoWrites(orgId: string, key: string) {
  const count = async () =>
    (
      await t.db.query<{ n: string }>(
        `SELECT ((SELECT count(*) FROM events WHERE org_id = $1) + (SELECT count(*) FROM authorizations WHERE org_id = $1))::text AS n`,
        [orgId],
      )
    )[0]!.n;
  const before = await count();
  const event = {
    id: `refused-${Math.random()}`,
    member: 'm',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    occurred_at: new Date(Date.now() - 60_000).toISOString(),
    usage: { input_tokens: 10 },
  };
  expectProblem(await t.call('POST', '/v1/events', { key, body: { events: [event] } }), 401, 'unauthorized');
  const hold = {
    member: 'm',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    estimate: { credits: '1' },
  };
  expectProblem(await t.call('POST', '/v1/authorizations', { key, body: hold }), 401, 'unauthorized');
  expect(await count()).toBe(before);
}
