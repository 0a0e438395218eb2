import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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

  it('builds the API document once: later requests for /openapi.json and /docs reuse it', async () => {
    const first = await t.app.request('/openapi.json');
    expect(first.headers.get('content-type')).toMatch(/^application\/json/);
    const text = await first.text();
    const html = await (await t.app.request('/docs')).text();
    const build = vi.spyOn(t.app, 'getOpenAPI31Document');
    try {
      for (let i = 0; i < 3; i++) {
        expect(await (await t.app.request('/openapi.json')).text()).toBe(text);
        expect(await (await t.app.request('/docs')).text()).toBe(html);
      }
      expect(build).not.toHaveBeenCalled();
    } finally {
      build.mockRestore();
    }
  });
});
