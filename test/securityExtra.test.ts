/**
 * Request rate limits per key (429 problem+json with Retry-After), CORS only for the configured
 * origins, text that looks like SQL in the text fields test/security.test.ts does not cover, and
 * no secret in the request log of rate-limited and cross-origin requests.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ProblemSchema } from '../src/http/schemas.ts';
import { ensureWebBuilt } from '../web/scripts/ensureBuilt.ts';
import { createOrgWithKey, minutesAgo, OPERATOR_KEY, startTally, type TestTally } from './support/harness.ts';

const APP_ORIGIN = 'https://app.example.com';
const NASTY = [
  "Robert'); DROP TABLE grants;--",
  "' OR '1'='1",
  '1; SELECT pg_sleep(10); --',
  '$1 %s {{7*7}}',
];

let limited: TestTally;
let t: TestTally;
const logLines: string[] = [];

beforeAll(async () => {
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    logLines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  });
  try {
    [limited, t] = await Promise.all([
      startTally({ TALLY_RATE_LIMIT_PER_SECOND: '5', TALLY_RATE_LIMIT_BURST: '5', TALLY_LOG: 'json' }),
      startTally({
        TALLY_CORS_ORIGINS: `${APP_ORIGIN}, http://localhost:5173`,
        TALLY_FRAME_ANCESTORS: APP_ORIGIN,
        TALLY_LOG: 'json',
      }),
    ]);
  } finally {
    spy.mockRestore();
  }
});
afterAll(async () => {
  await Promise.all([limited?.close(), t?.close()]);
});

/** Runs `fn` with the JSON request log captured. */
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

describe('rate limits per key', () => {
  it('answers 429 problem+json with Retry-After past the burst, per key, and lets the key in again', async () => {
    const { org, key } = await logged(() => createOrgWithKey(limited));
    const other = await logged(() =>
      limited.call('POST', `/v1/orgs/${org.id}/api_keys`, { body: { name: 'b' } }),
    );
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<TestTally['call']>> | undefined;
    await logged(async () => {
      for (let i = 0; i < 8; i++) {
        const res = await limited.call('GET', `/v1/orgs/${org.id}`, { key });
        statuses.push(res.status);
        if (res.status === 429) refused ??= res;
      }
    });
    // A burst of 5; the calls take far less than the 200 ms a new token takes.
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toContain(429);
    expect(refused!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(ProblemSchema.parse(refused!.body)).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another key of the same org has a bucket of its own.
    expect(
      (await logged(() => limited.call('GET', `/v1/orgs/${org.id}`, { key: other.body.key }))).status,
    ).toBe(200);
    await new Promise((r) => setTimeout(r, Number(refused!.headers.get('retry-after')) * 1000));
    expect((await logged(() => limited.call('GET', `/v1/orgs/${org.id}`, { key }))).status).toBe(200);
  });

  it('does not throttle a busy key at the default limit', async () => {
    expect(loadConfig({}).TALLY_RATE_LIMIT_PER_SECOND).toBeGreaterThanOrEqual(10_000);
    const { org, key } = await createOrgWithKey(t);
    const answers = await logged(() =>
      Promise.all(Array.from({ length: 300 }, () => t.call('GET', `/v1/orgs/${org.id}/balance`, { key }))),
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
  });

  it('refuses a configuration that is not a count, saying in words what it must be', () => {
    expect(() => loadConfig({ TALLY_RATE_LIMIT_PER_SECOND: 'lots' })).toThrow(
      'TALLY_RATE_LIMIT_PER_SECOND: must be a whole number of at least 0',
    );
    expect(() => loadConfig({ TALLY_RATE_LIMIT_BURST: '0' })).toThrow(
      'TALLY_RATE_LIMIT_BURST: must be a whole number of at least 1',
    );
    expect(() => loadConfig({ PORT: '70000', TALLY_WORKERS: '2.5' })).toThrow(
      'Invalid configuration:\n  PORT: must be a whole number from 0 to 65535\n  TALLY_WORKERS: must be a whole number from 1 to 64',
    );
    expect(() => loadConfig({ TALLY_BODY_LIMIT_BYTES: '1e6' })).toThrow(
      'must be a whole number of at least 1024',
    );
    expect(loadConfig({ PORT: '8080', TALLY_WORKERS: '2' })).toMatchObject({ PORT: 8080, TALLY_WORKERS: 2 });
    expect(loadConfig({}).PORT).toBe(4100);
  });
});

describe('CORS', () => {
  const preflight = (tally: TestTally, origin: string) =>
    tally.app.request('/v1/events', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it('allows a configured origin, on answers and errors alike, and answers its preflight', async () => {
    const ok = await t.call('GET', '/v1/orgs', { headers: { origin: APP_ORIGIN } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(ok.headers.get('vary')).toMatch(/Origin/);
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
    const refused = await t.call('GET', '/v1/orgs', {
      key: 'tally_sk_wrong',
      headers: { origin: APP_ORIGIN },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    const pre = await preflight(t, APP_ORIGIN);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });

  it('gives any other origin no Access-Control-Allow-Origin', async () => {
    for (const origin of [
      'https://evil.example',
      'https://app.example.com.evil.example',
      'null',
      `${APP_ORIGIN}:444`,
    ]) {
      const res = await t.call('GET', '/v1/orgs', { headers: { origin } });
      expect(res.headers.get('access-control-allow-origin'), origin).toBeNull();
      expect((await preflight(t, origin)).headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it('sends no CORS header at all when no origin is configured', async () => {
    const res = await limited.app.request('/healthz');
    expect(res.status).toBe(200);
    const pre = await preflight(limited, APP_ORIGIN);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('refuses an origin with a path or a trailing slash in the configuration', () => {
    expect(() => loadConfig({ TALLY_CORS_ORIGINS: 'https://app.example.com/' })).toThrow(
      /TALLY_CORS_ORIGINS/,
    );
    expect(() => loadConfig({ TALLY_CORS_ORIGINS: 'app.example.com' })).toThrow(/TALLY_CORS_ORIGINS/);
    expect(
      loadConfig({ TALLY_CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).TALLY_CORS_ORIGINS,
    ).toEqual(['https://a.example', 'http://localhost:5173']);
  });
});

describe('sites that may frame the web app', () => {
  beforeAll(() => ensureWebBuilt(), 300_000);
  const frameAncestors = async (tally: TestTally, path: string) => {
    const res = await tally.app.request(path);
    expect(res.status, path).toBe(200);
    return res.headers
      .get('content-security-policy')!
      .split(';')
      .map((d) => d.trim())
      .find((d) => d.startsWith('frame-ancestors'));
  };

  it('are the configured origins (and the app itself) on every app path, any site by default', async () => {
    for (const path of ['/', '/usage', '/embed']) {
      expect(await frameAncestors(t, path)).toBe(`frame-ancestors 'self' ${APP_ORIGIN}`);
      expect(await frameAncestors(limited, path)).toBe('frame-ancestors *');
    }
  });

  it('can be none, and refuse a value that is not an origin list', () => {
    expect(loadConfig({ TALLY_FRAME_ANCESTORS: 'none' }).TALLY_FRAME_ANCESTORS).toBe('none');
    expect(() => loadConfig({ TALLY_FRAME_ANCESTORS: 'https://app.example.com/embed' })).toThrow(
      /TALLY_FRAME_ANCESTORS/,
    );
    expect(() => loadConfig({ TALLY_FRAME_ANCESTORS: "'self' https://x.example" })).toThrow(
      /TALLY_FRAME_ANCESTORS/,
    );
  });
});

describe('text that looks like SQL, in the other text fields', () => {
  it('is stored and shown verbatim in grants, budgets, webhook endpoints, events and invoice settings', async () => {
    const { org, key } = await logged(() => createOrgWithKey(t));
    const path = `/v1/orgs/${org.id}`;
    const send = async (method: string, url: string, body: unknown, as = OPERATOR_KEY) => {
      const res = await logged(() => t.call(method, url, { key: as, body }));
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
      return res.body;
    };
    const grant = await send('POST', `${path}/grants`, {
      kind: 'bonus',
      amount_credits: '5',
      reason: NASTY[0],
    });
    expect(grant.reason).toBe(NASTY[0]);
    const member = await send('POST', `${path}/members`, { external_id: NASTY[1] }, key);
    const budget = await send('POST', `${path}/budgets`, {
      name: NASTY[2],
      scope: { kind: 'member', id: member.id },
      amount: '10',
    });
    expect(budget.name).toBe(NASTY[2]);
    const endpoint = await send('POST', `${path}/webhook_endpoints`, {
      url: 'https://example.com/hook',
      description: NASTY[3],
    });
    expect(endpoint.description).toBe(NASTY[3]);
    const ingest = await send(
      'POST',
      '/v1/events',
      {
        events: NASTY.map((s, i) => ({
          id: `sql-${i}`,
          member: NASTY[1],
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: minutesAgo(1),
          project: s,
          workspace_group: s,
          conversation_id: s,
          surface: s,
          usage: { input_tokens: 10, output_tokens: 1 },
        })),
      },
      key,
    );
    expect(ingest.results.map((r: { status: string }) => r.status)).toEqual(NASTY.map(() => 'accepted'));
    await send('PUT', '/v1/settings/invoicing', { seller_name: NASTY[0], seller_details: [NASTY[1]] });

    const read = async (url: string, as = OPERATOR_KEY) =>
      (await logged(() => t.call('GET', url, { key: as }))).body;
    expect((await read(`${path}/grants`)).data.map((g: { reason: string }) => g.reason)).toContain(NASTY[0]);
    expect((await read(`${path}/budgets`)).data.map((b: { name: string }) => b.name)).toEqual([NASTY[2]]);
    expect(
      (await read(`${path}/webhook_endpoints`)).data.map((e: { description: string }) => e.description),
    ).toEqual([NASTY[3]]);
    const projects = await read(`${path}/usage/breakdown?by=project&range=1d`, key);
    expect(projects.data.map((r: { key: string }) => r.key).sort()).toEqual([...NASTY].sort());
    const conversation = await read(`${path}/conversations/${encodeURIComponent(NASTY[2]!)}`, key);
    expect(JSON.stringify(conversation)).toContain(JSON.stringify(NASTY[2]).slice(1, -1));
    const invoicing = await read('/v1/settings/invoicing');
    expect(invoicing).toMatchObject({ seller_name: NASTY[0], seller_details: [NASTY[1]] });
    // And the tables are all still there, with the rows written above.
    const [row] = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE org_id = $1', [
      org.id,
    ]);
    expect(row!.n).toBe(NASTY.length);
  });
});

describe('the request log', () => {
  it('holds no secret, for rate-limited and cross-origin requests too', async () => {
    await logged(async () => {
      const { org, key } = await createOrgWithKey(t);
      await t.call('GET', `/v1/orgs/${org.id}`, { key, headers: { origin: APP_ORIGIN } });
      await t.call('GET', `/v1/orgs/${org.id}`, {
        key: `${key}x`,
        headers: { origin: 'https://evil.example' },
      });
    });
    const text = logLines.join('');
    const records = text.split('\n').filter((l) => l.startsWith('{"time"'));
    expect(records.some((l) => l.includes('"status":429'))).toBe(true);
    expect(records.some((l) => l.includes('"status":401'))).toBe(true);
    const secrets = [...text.matchAll(/tally_(sk|op)_[\w-]{8,}/g)].map((m) => m[0]);
    expect(secrets).toEqual([]);
    expect(text).not.toContain(OPERATOR_KEY.slice(9));
  });
});
