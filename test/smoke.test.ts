import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerJobs } from '../src/jobs/runner.ts';
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

  it('counts hold decisions by reason and shows how far behind each background job is', async () => {
    const { key } = await createOrgWithKey(t);
    const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };
    const hold = (credits: string) =>
      t.call('POST', '/v1/authorizations', { key, body: { ...call, estimate: { credits } } });
    expect((await hold('10')).body).toMatchObject({ approved: true, reason: null });
    // More than is left is held in part; then nothing is left.
    expect((await hold('1000000')).body).toMatchObject({ approved: true, reason: 'partial' });
    expect((await hold('10')).body).toMatchObject({ approved: false, reason: 'insufficient_credits' });
    // A job an hour overdue whose last run failed.
    await registerJobs(t.db, [{ name: 'expire_holds', everySeconds: 30, run: async () => 0 }]);
    await t.db.query(
      `UPDATE scheduled_jobs SET next_run_at = now() - interval '1 hour',
              last_finished_at = to_timestamp(1796600000), last_error = 'connection reset'
        WHERE name = 'expire_holds'`,
    );
    const text = await (await t.app.request('/metrics')).text();
    expect(text).toContain('tally_authorizations_total{decision="approved",reason="none"} 1\n');
    expect(text).toContain('tally_authorizations_total{decision="approved",reason="partial"} 1\n');
    expect(text).toContain('tally_authorizations_total{decision="denied",reason="insufficient_credits"} 1\n');
    const behind = Number(/^tally_job_behind_seconds\{job="expire_holds"\} (\d+)$/m.exec(text)?.[1]);
    expect(behind).toBeGreaterThanOrEqual(3600);
    expect(behind).toBeLessThan(3700);
    expect(text).toContain('tally_job_last_finished_timestamp_seconds{job="expire_holds"} 1796600000\n');
    expect(text).toContain('tally_job_last_run_failed{job="expire_holds"} 1\n');
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
