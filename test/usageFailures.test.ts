/**
 * Error rates in the usage breakdowns: a call failed when its metadata.error names the error (a
 * non-empty string) or is true; each group counts its failed calls, their share of its calls and
 * the error they gave most, under the breakdown's filters and range, for its own org only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageBreakdownSchema, UsageEventsPageSchema, UsageSummarySchema } from '../src/http/routes/usage.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';
import { everyPage } from './support/paging.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

type Row = ReturnType<typeof UsageBreakdownSchema.parse>['data'][number];

/** [surface, tool, metadata.error] of each call; undefined leaves the key out. */
const CALLS: [string, string | undefined, unknown][] = [
  ['slack', 'web_search', 'rate_limited'],
  ['slack', 'web_search', 'rate_limited'],
  ['slack', 'code_exec', 'timeout'],
  ['slack', undefined, undefined],
  ['gmail', 'web_search', true],
  ['gmail', undefined, ''],
  ['gmail', undefined, false],
  ['web', 'code_exec', 'timeout'],
  ['web', undefined, null],
  ['api', undefined, undefined],
];

async function sendCalls(key: string, prefix: string) {
  const events = CALLS.map(([surface, tool, error], i) => ({
    id: `${prefix}-${i}`,
    member: `u${i % 3}`,
    feature: i % 2 ? 'Chat' : 'Agents',
    provider: 'openai',
    model: 'gpt-4o-mini',
    surface,
    occurred_at: minutesAgo(10 + i * 30),
    usage: { input_tokens: 500 + i, output_tokens: 50 },
    metadata: { ...(tool ? { tool } : {}), ...(error !== undefined ? { error } : {}) },
  }));
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
}

describe('failed calls in the breakdowns', () => {
  let org: { id: string };
  let key: string;

  async function breakdown(query: string): Promise<Map<string, Row>> {
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/breakdown?range=7d&${query}`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return new Map(UsageBreakdownSchema.parse(r.body).data.map((row) => [row.key, row]));
  }
  const failures = (row: Row | undefined) =>
    row && {
      calls: row.calls,
      failed_calls: row.failed_calls,
      error_rate: row.error_rate,
      top_error: row.top_error,
    };

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t));
    await sendCalls(key, 'a');
    // Another org's failures of the same integrations never count here.
    const other = await createOrgWithKey(t);
    await sendCalls(other.key, 'b');
    await sendCalls(other.key, 'c');
  });

  it('counts each integration’s failed calls, their rate and the error they gave most', async () => {
    const rows = await breakdown('by=integration');
    expect(failures(rows.get('slack'))).toEqual({
      calls: 4,
      failed_calls: 3,
      error_rate: '75',
      top_error: 'rate_limited',
    });
    // true fails with the code 'error'; an empty string or false is no error.
    expect(failures(rows.get('gmail'))).toEqual({
      calls: 3,
      failed_calls: 1,
      error_rate: '33.3',
      top_error: 'error',
    });
    // The product's own surfaces: web's timeout; null is no error.
    expect(failures(rows.get(''))).toEqual({
      calls: 3,
      failed_calls: 1,
      error_rate: '33.3',
      top_error: 'timeout',
    });
  });

  it('counts them in the summary of the range, under its filters', async () => {
    const summary = async (query: string) => {
      const r = await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=7d${query}`, { key });
      expect(r.status).toBe(200);
      const s = UsageSummarySchema.parse(r.body);
      return { calls: s.calls, failed_calls: s.failed_calls, error_rate: s.error_rate };
    };
    expect(await summary('')).toEqual({ calls: 10, failed_calls: 5, error_rate: '50' });
    expect(await summary('&integration=gmail')).toEqual({ calls: 3, failed_calls: 1, error_rate: '33.3' });
    expect(await summary('&surface=api')).toEqual({ calls: 1, failed_calls: 0, error_rate: '0' });
  });

  it('counts them in every dimension, the tool included', async () => {
    const tools = await breakdown('by=tool');
    expect(failures(tools.get('web_search'))).toEqual({
      calls: 3,
      failed_calls: 3,
      error_rate: '100',
      top_error: 'rate_limited',
    });
    expect(failures(tools.get('code_exec'))).toEqual({
      calls: 2,
      failed_calls: 2,
      error_rate: '100',
      top_error: 'timeout',
    });
    const surfaces = await breakdown('by=surface');
    expect(failures(surfaces.get('api'))).toEqual({
      calls: 1,
      failed_calls: 0,
      error_rate: '0',
      top_error: null,
    });
    const features = await breakdown('by=feature');
    const failed = [...features.values()].reduce((n, row) => n + row.failed_calls, 0);
    expect(failed).toBe(5);
  });

  it('counts under the filters and range of the breakdown', async () => {
    const slackFeatures = await breakdown('by=feature&integration=slack');
    expect([...slackFeatures.values()].reduce((n, row) => n + row.failed_calls, 0)).toBe(3);
    const slackTool = await breakdown('by=integration&tool=code_exec');
    expect(failures(slackTool.get('slack'))).toEqual({
      calls: 1,
      failed_calls: 1,
      error_rate: '100',
      top_error: 'timeout',
    });
    // A failure three days ago counts in 7 days, not in the last day.
    const old = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'a-old',
            member: 'u0',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o-mini',
            surface: 'slack',
            occurred_at: minutesAgo(3 * 24 * 60),
            usage: { input_tokens: 10 },
            metadata: { error: 'overloaded' },
          },
        ],
      },
    });
    expect(old.body.results[0].status).toBe('accepted');
    expect(failures((await breakdown('by=integration')).get('slack'))).toMatchObject({
      calls: 5,
      failed_calls: 4,
    });
    const day = await t.call('GET', `/v1/orgs/${org.id}/usage/breakdown?range=1d&by=integration`, { key });
    const slackToday = UsageBreakdownSchema.parse(day.body).data.find((row) => row.key === 'slack');
    expect(failures(slackToday)).toEqual({
      calls: 4,
      failed_calls: 3,
      error_rate: '75',
      top_error: 'rate_limited',
    });
  });

  it('pages the same figures one group at a time', async () => {
    const all = await breakdown('by=integration');
    const pages = await everyPage(
      t,
      `/v1/orgs/${org.id}/usage/breakdown?range=7d&by=integration&limit=1`,
      key,
      (body) => UsageBreakdownSchema.parse(body),
    );
    const paged = pages.flatMap((page) => page.data);
    expect(paged.map(failures)).toEqual([...all.values()].map(failures));
  });
});

describe('failed calls in the activity log and the export', () => {
  it("names each call's error, and none for a call that succeeded", async () => {
    const { org, key } = await createOrgWithKey(t);
    await sendCalls(key, 'x');
    const expected = new Map(
      CALLS.map(([, , error], i) => [
        `x-${i}`,
        error === true ? 'error' : typeof error === 'string' && error !== '' ? error : null,
      ]),
    );
    const log = await t.call('GET', `/v1/orgs/${org.id}/usage/events?range=1d&limit=100`, { key });
    expect(log.status).toBe(200);
    const events = UsageEventsPageSchema.parse(log.body).data;
    expect(new Map(events.map((e) => [e.id, e.error]))).toEqual(expected);
    const exported = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=jsonl&range=1d`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const rows = (await exported.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event_id: string; error: string | null });
    expect(new Map(rows.map((r) => [r.event_id, r.error]))).toEqual(expected);
  });
});
