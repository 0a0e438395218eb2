import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

describe('smoke', () => {
  it('creates an org and ingests an event', async () => {
    const { org, key } = await createOrgWithKey(t);
    const res = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'e1',
            member: 'u1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: minutesAgo(1),
            usage: { input_tokens: 1000, output_tokens: 500 },
          },
        ],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      status: 'accepted',
      credits: '1.035',
      cost: '0.01035',
      currency: 'EUR',
    });
    expect(org.id).toMatch(/^org_/);
  });
});

describe('operations endpoints', () => {
  it('answers /healthz, /readyz, /metrics and /docs, and documents them in /openapi.json', async () => {
    expect((await t.call('GET', '/healthz', { key: '' })).body).toEqual({ status: 'ok' });
    expect((await t.call('GET', '/readyz', { key: '' })).body).toMatchObject({ status: 'ready' });
    const metrics = await t.app.request('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
    const docs = await t.app.request('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const doc = (await t.call('GET', '/openapi.json', { key: '' })).body as {
      paths: Record<string, { get?: { security?: unknown[] } }>;
    };
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
      expect(doc.paths[path]?.get?.security, path).toEqual([]);
    }
  });
});
