import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { MAX_EVENT_AGE_MS } from '../src/domain/usageEvent.ts';
import { prepare } from '../src/server.ts';
import { embedSigningSecret } from '../src/services/embedTokens/signingSecret.ts';
import { encodeEmbedToken } from '../src/services/embedTokens/token.ts';
import { readOrgFingerprints } from '../src/services/live/orgChanges.ts';
import { openServer } from '../src/store/db.ts';
import { createOrgWithKey, OPERATOR_KEY, onServer, startTally, type TestTally } from './support/harness.ts';

describe('embed tokens', () => {
  let t: TestTally;
  let orgId: string;
  let adminKey: string;
  let memberId: string;
  let otherOrgId: string;

  beforeAll(async () => {
    t = await startTally();
    const { org, key } = await createOrgWithKey(t);
    orgId = org.id;
    adminKey = key;
    const member = await t.call('POST', `/v1/orgs/${orgId}/members`, {
      key,
      body: { external_id: 'u_42', name: 'Ada', email: 'ada@example.com', role: 'viewer' },
    });
    memberId = member.body.id;
    otherOrgId = (await createOrgWithKey(t, { name: 'Other' })).org.id;
  });
  afterAll(() => t.close());

  const mint = (body: Record<string, unknown>, key = adminKey, org = orgId) =>
    t.call('POST', `/v1/orgs/${org}/embed_tokens`, { key, body });

  it('refuses a token before any was minted, writing nothing', async () => {
    const forged = encodeEmbedToken('guessed', {
      org: orgId,
      member: memberId,
      role: 'owner',
      exp: Math.floor(Date.now() / 1000) + 60,
    });
    expect((await t.call('GET', '/v1/session', { key: forged })).status).toBe(401);
    const secrets = await t.db.query("SELECT 1 FROM operator_settings WHERE key = 'embed_token_secret'");
    expect(secrets).toHaveLength(0);
  });

  it('mints a token for a member by the host app user id, with the page URL and expiry', async () => {
    const before = Date.now();
    const res = await mint({ member: 'u_42', role: 'viewer', ttl_seconds: 600 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ object: 'embed_token', member: memberId, role: 'viewer' });
    expect(res.body.token).toMatch(/^tally_em_[\w-]+\.[\w-]+$/);
    expect(res.body.url).toBe(`http://localhost/embed#token=${res.body.token}`);
    const expires = Date.parse(res.body.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 599_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 601_000);
  });

  it('acts as its member with its role on its own org only', async () => {
    const { body } = await mint({ member: memberId, role: 'viewer' });
    const session = await t.call('GET', '/v1/session', { key: body.token });
    expect(session.body).toMatchObject({ kind: 'embed', org_id: orgId, role: 'viewer', member_id: memberId });
    expect((await t.call('GET', `/v1/orgs/${orgId}/usage/summary`, { key: body.token })).status).toBe(200);
    // A viewer may read but not buy credits or set limits: the API refuses, whatever the page shows.
    const buy = await t.call('POST', `/v1/orgs/${orgId}/checkout_sessions`, {
      key: body.token,
      body: { amount: '50' },
    });
    expect(buy.status).toBe(403);
    const limits = await t.call('PUT', `/v1/orgs/${orgId}/limits`, {
      key: body.token,
      body: { alert_threshold: '10', allowed_limit: '20' },
    });
    expect(limits.status).toBe(403);
    const other = await t.call('GET', `/v1/orgs/${otherOrgId}/usage/summary`, { key: body.token });
    expect(other.status).toBe(404);
  });

  it('is an embed principal: the role table grants its permissions, less what a browser must not hold', async () => {
    const { body } = await mint({ member: memberId, role: 'owner', ttl_seconds: 300 });
    const session = await t.call('GET', '/v1/session', { key: body.token });
    expect(session.body).toMatchObject({ kind: 'embed', role: 'owner', expires_at: body.expires_at });
    expect(session.body.permissions).toContain('billing:purchase');
    expect(session.body.permissions).toContain('limits:write');
    for (const withheld of ['events:write', 'keys:write', 'embed:create']) {
      expect(session.body.permissions).not.toContain(withheld);
    }
    const keySession = await t.call('GET', '/v1/session', { key: adminKey });
    expect(keySession.body).toMatchObject({ kind: 'org_key', member_id: null, expires_at: null });
    expect(keySession.body.permissions).toContain('keys:write');
    // A short-lived browser token cannot turn itself into a lasting credential.
    const key = await t.call('POST', `/v1/orgs/${orgId}/api_keys`, {
      key: body.token,
      body: { name: 'escalate', role: 'owner' },
    });
    expect(key.status).toBe(403);
    expect(key.body.detail).toContain('embed token');
    expect((await mint({ member: memberId, role: 'owner', ttl_seconds: 86_400 }, body.token)).status).toBe(
      403,
    );
  });

  it('names the member in the audit rows of what it changes', async () => {
    const { body } = await mint({ member: memberId, role: 'admin' });
    const res = await t.call('PUT', `/v1/orgs/${orgId}/limits`, {
      key: body.token,
      body: { alert_threshold: '10', allowed_limit: '20' },
    });
    expect(res.status).toBe(200);
    const rows = await t.db.query<{ actor: string; action: string }>(
      'SELECT actor, action FROM audit_log WHERE org_id = $1 ORDER BY id DESC LIMIT 1',
      [orgId],
    );
    expect(rows[0]!.actor).toBe(memberId);
  });

  it("is refused on another org's paths before any work, as if the org did not exist", async () => {
    const { body } = await mint({ member: memberId, role: 'owner' });
    for (const path of ['/balance', '/limits', '/members', '/usage/events']) {
      const res = await t.call('GET', `/v1/orgs/${otherOrgId}${path}`, { key: body.token });
      expect(res.status).toBe(404);
      expect(res.body.param).toBe('org');
    }
    const orgs = await t.call('GET', '/v1/orgs', { key: body.token });
    expect(orgs.body.data.map((o: { id: string }) => o.id)).toEqual([orgId]);
  });

  it("follows its org's live stream until the token expires, and no other org's", async () => {
    const { body } = await mint({ member: memberId, role: 'viewer', ttl_seconds: 2 });
    const started = Date.now();
    const res = await t.app.request(`/v1/orgs/${orgId}/usage/stream`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    expect(text).toMatch(/^event: ready\n/);
    // Ended with the token (the stream otherwise lasts a minute).
    expect(Date.now() - started).toBeLessThan(4000);
    expect(
      (
        await t.app.request(`/v1/orgs/${orgId}/usage/stream`, {
          headers: { authorization: `Bearer ${body.token}` },
        })
      ).status,
    ).toBe(401);
    const live = await mint({ member: memberId, role: 'viewer' });
    const other = await t.app.request(`/v1/orgs/${otherOrgId}/usage/stream`, {
      headers: { authorization: `Bearer ${live.body.token}` },
    });
    expect(other.status).toBe(404);
  });

  it('may not send usage or place holds, whatever its role: that is for the host backend', async () => {
    const { body } = await mint({ member: memberId, role: 'owner' });
    const event = {
      id: 'from-the-browser',
      member: 'u_42',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o-mini',
      occurred_at: new Date().toISOString(),
      usage: { input_tokens: 10, output_tokens: 10 },
    };
    const events = await t.call('POST', '/v1/events', { key: body.token, body: { events: [event] } });
    expect(events.status).toBe(403);
    const hold = await t.call('POST', '/v1/authorizations', {
      key: body.token,
      body: {
        member: 'u_42',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o-mini',
        estimate: { credits: '1' },
      },
    });
    expect(hold.status).toBe(403);
    const [stored] = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE org_id = $1', [
      orgId,
    ]);
    expect(Number(stored!.n)).toBe(0);
  });

  it('refuses an expired, tampered or foreign-signed token', async () => {
    const secret = await embedSigningSecret(t.db);
    const expired = encodeEmbedToken(secret, {
      org: orgId,
      member: memberId,
      role: 'admin',
      exp: Math.floor(Date.now() / 1000) - 1,
    });
    const res = await t.call('GET', '/v1/session', { key: expired });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('embed_token_expired');

    const { body } = await mint({ member: memberId, role: 'viewer' });
    const [claims, signature] = body.token.slice('tally_em_'.length).split('.');
    const raised = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url').toString()), role: 'owner' }),
    ).toString('base64url');
    const tampered = await t.call('GET', '/v1/session', { key: `tally_em_${raised}.${signature}` });
    expect(tampered.status).toBe(401);
    const otherOrg = await t.call('GET', '/v1/session', {
      key: `tally_em_${raised.replace(orgId, otherOrgId)}.${signature}`,
    });
    expect(otherOrg.status).toBe(401);
    const forged = encodeEmbedToken('not the secret', {
      org: orgId,
      member: memberId,
      role: 'owner',
      exp: Math.floor(Date.now() / 1000) + 60,
    });
    expect((await t.call('GET', '/v1/session', { key: forged })).status).toBe(401);
  });

  it('stops working when its member is removed', async () => {
    const member = await t.call('POST', `/v1/orgs/${orgId}/members`, {
      key: adminKey,
      body: { external_id: 'u_leaving', role: 'member' },
    });
    const { body } = await mint({ member: 'u_leaving', role: 'member' });
    expect((await t.call('GET', '/v1/session', { key: body.token })).status).toBe(200);
    await t.call('DELETE', `/v1/orgs/${orgId}/members/${member.body.id}`, { key: adminKey });
    expect((await t.call('GET', '/v1/session', { key: body.token })).status).toBe(401);
    expect((await mint({ member: 'u_leaving', role: 'member' })).status).toBe(404);
  });

  it('validates the request and needs embed:create', async () => {
    const bad = await mint({ member: memberId, role: 'superuser' });
    expect(bad.status).toBe(422);
    expect(bad.body.param).toBe('role');
    const long = await mint({ member: memberId, role: 'viewer', ttl_seconds: 86_401 });
    expect(long.body.param).toBe('ttl_seconds');
    expect((await mint({ member: 'nobody', role: 'viewer' })).body).toMatchObject({
      status: 404,
      param: 'member',
    });
    const viewerKey = await t.call('POST', `/v1/orgs/${orgId}/api_keys`, {
      key: adminKey,
      body: { name: 'read only', role: 'viewer' },
    });
    expect((await mint({ member: memberId, role: 'viewer' }, viewerKey.body.key)).status).toBe(403);
    expect((await mint({ member: memberId, role: 'viewer' }, adminKey, otherOrgId)).status).toBe(404);
  });

  it('serves the web app with a strict Content-Security-Policy on every app path', async () => {
    for (const path of ['/', '/usage', '/usage/payments', '/embed']) {
      const res = await t.app.request(path);
      expect([200, 503]).toContain(res.status);
      if (res.status === 200) {
        const csp = res.headers.get('content-security-policy')!;
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("default-src 'none'");
        expect(csp).not.toContain('unsafe-inline');
      }
    }
  });
});

describe('the live usage stream', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally();
  });
  afterAll(() => t.close());

  /** The event names as they arrive, with a deadline for each. */
  function reader(res: globalThis.Response) {
    const stream = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    // A read that lost a race against the deadline is kept for the next call: its chunk is not lost.
    let pending: ReturnType<typeof stream.read> | null = null;
    return async (deadlineMs: number): Promise<string | null> => {
      const until = Date.now() + deadlineMs;
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = block.match(/^event: (.*)$/m)?.[1];
          if (name) return name;
          continue;
        }
        const left = until - Date.now();
        if (left <= 0) return null;
        pending ??= stream.read();
        const next = await Promise.race([
          pending,
          new Promise<null>((resolve) => setTimeout(() => resolve(null), left)),
        ]);
        if (next === null) return null;
        pending = null;
        if (next.done) return 'end';
        buffer += next.value;
      }
    };
  }

  it('notices usage dated as far back as ingest accepts, for an org whose balance never moves (BYOK)', async () => {
    const { org, key } = await createOrgWithKey(t, { billing_mode: 'byok' });
    const send = async (id: string, agoMs: number) => {
      const sent = await t.call('POST', '/v1/events', {
        key,
        body: {
          events: [
            {
              id,
              member: 'u1',
              feature: 'Chat',
              provider: 'openai',
              model: 'gpt-4o-mini',
              occurred_at: new Date(Date.now() - agoMs).toISOString(),
              usage: { input_tokens: 100, output_tokens: 10 },
            },
          ],
        },
      });
      expect(sent.body.results[0].status).toBe('accepted');
    };
    await send('recent', 0);
    const before = await readOrgFingerprints(t.db, [org.id]);
    await send('oldest', MAX_EVENT_AGE_MS - 60_000);
    const after = await readOrgFingerprints(t.db, [org.id]);
    expect(after[0]!.fingerprint).not.toBe(before[0]!.fingerprint);
  });

  it('tells a page on one Tally process of usage sent through another, and of limits set', async () => {
    const { org, key } = await createOrgWithKey(t);
    // On a Postgres server the other process is another app on its own pool: only the database links them.
    const other = onServer
      ? await prepare(
          loadConfig({ TALLY_ADMIN_KEY: OPERATOR_KEY, TALLY_LOG: 'off' }),
          await openServer(t.url!),
        )
      : t;
    const controller = new AbortController();
    try {
      const res = await t.app.request(`/v1/orgs/${org.id}/usage/stream`, {
        headers: { authorization: `Bearer ${key}` },
        signal: controller.signal,
      });
      const next = reader(res);
      expect(await next(2000)).toBe('ready');
      expect(await next(1500)).toBeNull();
      const sent = await other.app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          events: [
            {
              id: 'live-1',
              member: 'u1',
              feature: 'Chat',
              provider: 'openai',
              model: 'gpt-4o-mini',
              occurred_at: new Date().toISOString(),
              usage: { input_tokens: 100, output_tokens: 10 },
            },
          ],
        }),
      });
      expect(sent.status).toBe(200);
      expect(await next(3000)).toBe('changed');
      const limits = await other.app.request(`/v1/orgs/${org.id}/limits`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ alert_threshold: '5', allowed_limit: '9' }),
      });
      expect(limits.status).toBe(200);
      expect(await next(3000)).toBe('changed');
      expect(await next(1500)).toBeNull();
    } finally {
      controller.abort();
      if (other !== t) await other.db.close();
    }
  });

  it('needs usage:read on the org, and an org that exists', async () => {
    const { key } = await createOrgWithKey(t);
    const missing = await t.call('GET', '/v1/orgs/org_doesnotexist000000000/usage/stream');
    expect(missing.status).toBe(404);
    const foreign = await createOrgWithKey(t, { name: 'Foreign' });
    const refused = await t.call('GET', `/v1/orgs/${foreign.org.id}/usage/stream`, { key });
    expect(refused.status).toBe(404);
  });
});
