/**
 * Rate limits beyond the single-process /v1 case of securityExtra.test.ts: the gateway routes are
 * limited per key and refuse in the provider's own format; on a Postgres server the limit of a key
 * holds across 3 processes behind a round-robin client (each process alone would let the whole
 * limit through, 3 times the limit in all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_MS } from '../src/http/middleware/rateLimit.ts';
import { createOrgWithKey, freshDb, onServer, startTally, type TestTally } from './support/harness.ts';
import { request, startProcesses, stopProcesses, type TallyProcess } from './support/processes.ts';

const RATE = 20;
const BURST = 20;
const LIMITED = { TALLY_RATE_LIMIT_PER_SECOND: String(RATE), TALLY_RATE_LIMIT_BURST: String(BURST) };
/** Nothing listens there: no request of these tests reaches a provider. */
const CLOSED = 'http://127.0.0.1:9';

describe('gateway rate limits (one process)', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally({
      TALLY_RATE_LIMIT_PER_SECOND: '5',
      TALLY_RATE_LIMIT_BURST: '5',
      TALLY_UPSTREAM_OPENAI_URL: CLOSED,
      TALLY_UPSTREAM_ANTHROPIC_URL: CLOSED,
    });
  });
  afterAll(() => t?.close());

  /** A request the gateway refuses at once (no model): it never goes upstream. */
  const openai = (key: string) =>
    t.call('POST', '/gateway/openai/v1/chat/completions', { key, body: { messages: [] } });
  const anthropic = (key: string) =>
    t.call('POST', '/gateway/anthropic/v1/messages', {
      key: '',
      headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: { messages: [] },
    });

  it('answers 429 with Retry-After in the OpenAI and the Anthropic format past the burst, per key', async () => {
    const { org, key } = await createOrgWithKey(t);
    const other = (await t.call('POST', `/v1/orgs/${org.id}/api_keys`, { body: { name: 'other' } })).body
      .key as string;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await openai(key)).status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    const refused = await openai(key);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(refused.body).toEqual({
      error: {
        message: expect.stringMatching(/Too many requests/),
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
    // The same key on the Anthropic route draws from the same bucket (one bucket per key sent).
    const viaAnthropic = await anthropic(key);
    expect(viaAnthropic.status).toBe(429);
    expect(viaAnthropic.body).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: expect.stringMatching(/Too many requests/) },
    });
    expect(Number(viaAnthropic.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another key has its own bucket, and the /v1 API its own count.
    expect((await anthropic(other)).status).toBe(400);
    expect((await t.call('GET', `/v1/orgs/${org.id}`, { key })).status).toBe(200);
    // A request without a key is not counted: it is refused as unauthenticated.
    for (let i = 0; i < 3; i++) {
      expect(
        (await t.call('POST', '/gateway/openai/v1/chat/completions', { key: '', body: {} })).status,
      ).toBe(401);
    }
  });
});

describe.runIf(onServer)('a key limit across 3 processes on one Postgres server', () => {
  let processes: TallyProcess[] = [];
  let key = '';
  let orgId = '';
  beforeAll(async () => {
    const fresh = await freshDb();
    await fresh.db.close();
    processes = await startProcesses(3, {
      databaseUrl: fresh.url!,
      jobsOn: [],
      env: { ...LIMITED, TALLY_UPSTREAM_OPENAI_URL: CLOSED, TALLY_UPSTREAM_ANTHROPIC_URL: CLOSED },
    });
    const org = await request(processes[0]!.url, 'POST', '/v1/orgs', {
      body: { name: 'Limited', currency: 'EUR', timezone: 'UTC' },
    });
    orgId = org.body.id;
    const created = await request(processes[1]!.url, 'POST', `/v1/orgs/${orgId}/api_keys`, {
      body: { name: 'busy' },
    });
    key = created.body.key;
  }, 90_000);
  afterAll(() => stopProcesses(processes));

  /** `clients` loops sending round robin over the processes for `ms`; answers counted per process. */
  async function hammer(send: (p: TallyProcess) => Promise<number>, ms: number, clients = 12) {
    const perProcess = processes.map(() => ({ admitted: 0, refused: 0 }));
    let turn = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() - started < ms) {
          const i = turn++ % processes.length;
          const status = await send(processes[i]!);
          if (status === 429) perProcess[i]!.refused++;
          else perProcess[i]!.admitted++;
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const admitted = perProcess.reduce((n, p) => n + p.admitted, 0);
    const refused = perProcess.reduce((n, p) => n + p.refused, 0);
    return { perProcess, admitted, refused, seconds };
  }

  /**
   * The bound: the limit over the run (rate x seconds + one burst), plus what stale shares may let
   * through: per process, one sync interval at the full rate and a third of a burst.
   */
  const bound = (seconds: number) =>
    RATE * seconds + BURST + processes.length * (RATE * (SYNC_MS / 1000) + BURST / processes.length);

  it('admits about the limit of the key in all, not the limit per process', { timeout: 60_000 }, async () => {
    const run = await hammer(
      async (p) =>
        (
          await fetch(`${p.url}/v1/orgs/${orgId}`, { headers: { authorization: `Bearer ${key}` } }).then(
            async (r) => {
              await r.arrayBuffer();
              return r;
            },
          )
        ).status,
      5_000,
    );
    console.log(
      `v1, 3 processes, limit ${RATE}/s burst ${BURST}: ${run.admitted} admitted, ${run.refused} refused in ${run.seconds.toFixed(
        1,
      )} s (per process ${JSON.stringify(run.perProcess)}); bound ${bound(run.seconds).toFixed(0)}, per-process limits would admit ${(
        processes.length * (RATE * run.seconds + BURST)
      ).toFixed(0)}`,
    );
    // The clients asked far more than the limit, so the limiter decided.
    expect(run.refused).toBeGreaterThan(run.admitted);
    expect(run.admitted).toBeLessThanOrEqual(bound(run.seconds));
    // Not throttled below the limit either (shares follow the traffic within a sync or two).
    expect(run.admitted).toBeGreaterThanOrEqual(0.6 * RATE * run.seconds);
    for (const p of run.perProcess) expect(p.admitted).toBeGreaterThan(0);
  });

  it('holds for the gateway routes too, answering in the provider format', { timeout: 60_000 }, async () => {
    let refusal: unknown;
    const run = await hammer(async (p) => {
      const res = await fetch(`${p.url}/gateway/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [] }),
      });
      const body = await res.json();
      if (res.status === 429) {
        refusal ??= body;
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      } else {
        expect(res.status).toBe(400);
      }
      return res.status;
    }, 5_000);
    console.log(
      `gateway, 3 processes: ${run.admitted} admitted, ${run.refused} refused in ${run.seconds.toFixed(1)} s; bound ${bound(
        run.seconds,
      ).toFixed(0)}`,
    );
    expect(refusal).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
    expect(run.refused).toBeGreaterThan(run.admitted);
    expect(run.admitted).toBeLessThanOrEqual(bound(run.seconds));
    expect(run.admitted).toBeGreaterThanOrEqual(0.6 * RATE * run.seconds);
  });
});
