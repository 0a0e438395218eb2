/**
 * The summary under a tool filter reads the tool's rollups, as the breakdown by tool does: once the
 * retention purge has deleted the raw events, both still tell the same figures, to the last unit,
 * and those they told before. Where the build_usage_rollups job rolled the days up by pairs, the
 * distinct counts (members, features, model tiers) under the filter stay too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageBreakdownSchema, UsageSummarySchema } from '../src/http/routes/usage.ts';
import { buildUsagePairs } from '../src/services/maintenance/buildUsagePairs.ts';
import { purgeExpiredEvents } from '../src/services/maintenance/purgeExpiredEvents.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

const ZONE = 'Europe/Berlin';
const DAY_MS = 86_400_000;
const TOOLS = ['web_search', 'code', 'image', undefined];
const localDate = (at: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: ZONE }).format(at);

/** An org with tool-tagged usage on the 2 to 20 days before today, nothing today. */
async function orgWithToolUsage() {
  const { org, key } = await createOrgWithKey(t, { timezone: ZONE });
  const today = Date.parse(`${localDate(new Date())}T00:00:00Z`);
  const events = Array.from({ length: 120 }, (_, i) => ({
    id: `tr${i}`,
    member: ['ana', 'ben', 'cleo'][i % 3],
    feature: ['Chat', 'Agents'][(i * 5) % 2],
    provider: 'openai',
    model: ['gpt-4o', 'gpt-4o-mini'][(i * 7) % 2],
    occurred_at: new Date(today - (2 + (i % 19)) * DAY_MS + ((i * 37) % 21) * 3_600_000).toISOString(),
    ...(TOOLS[i % 4] ? { metadata: { tool: TOOLS[i % 4] } } : {}),
    usage: { input_tokens: 1000 + i * 13, output_tokens: 50 + i * 7 },
  }));
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
  expect(
    (await t.call('PUT', `/v1/orgs/${org.id}/retention`, { body: { raw_event_months: 1 } })).status,
  ).toBe(200);
  return { org, key };
}

/** The summary under each tool filter and the breakdown by tool, over the 25 days before today. */
async function figures(orgId: string, key: string) {
  const span = `range=custom&from=${localDate(new Date(Date.now() - 25 * DAY_MS))}&to=${localDate(new Date(Date.now() - DAY_MS))}`;
  const get = async (path: string) => {
    const r = await t.call('GET', `/v1/orgs/${orgId}/usage/${path}`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const byTool = UsageBreakdownSchema.parse(await get(`breakdown?by=tool&limit=50&${span}`));
  const summaries = new Map<string, ReturnType<typeof UsageSummarySchema.parse>>();
  for (const tool of TOOLS.filter((tool) => tool !== undefined)) {
    summaries.set(tool, UsageSummarySchema.parse(await get(`summary?tool=${tool}&${span}`)));
  }
  return { byTool, summaries };
}

const purgeAll = async (orgIds: string[]) => {
  // Far enough ahead that every event of these orgs is past a month's retention.
  const purged = await purgeExpiredEvents(t.db, { now: new Date(Date.now() + 120 * DAY_MS) });
  expect(purged).toMatchObject({ purged: 240, done: true });
  const [left] = await t.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM events WHERE org_id = ANY($1)',
    [orgIds],
  );
  expect(left!.n).toBe(0);
};

describe('the tool-filtered summary after the retention purge', () => {
  it('equals the breakdown row of the tool, exactly, before and after the purge', async () => {
    // One org's days rolled up by pairs before the purge, as the job does while they are recent;
    // the other's left to the rollups ingest keeps.
    const paired = await orgWithToolUsage();
    const built = await buildUsagePairs(t.db, { minCalls: 1 });
    expect(built.days).toBeGreaterThan(10);
    const plain = await orgWithToolUsage();
    const before = new Map([
      [paired.org.id, await figures(paired.org.id, paired.key)],
      [plain.org.id, await figures(plain.org.id, plain.key)],
    ]);
    await purgeAll([paired.org.id, plain.org.id]);
    for (const { org, key } of [paired, plain]) {
      const was = before.get(org.id)!;
      const now = await figures(org.id, key);
      expect(now.byTool).toEqual(was.byTool);
      for (const [tool, summary] of now.summaries) {
        const row = now.byTool.data.find((r) => r.key === tool)!;
        expect(summary.calls).toBeGreaterThan(0);
        expect({ credits: summary.credits, cost: summary.cost, calls: summary.calls }).toEqual({
          credits: row.credits,
          cost: row.cost,
          calls: row.calls,
        });
        expect(summary.tokens).toEqual(row.tokens);
        const then = was.summaries.get(tool)!;
        expect(summary.previous).toEqual(then.previous);
        expect([summary.credits, summary.cost, summary.calls]).toEqual([then.credits, then.cost, then.calls]);
        // The distinct counts come from the pair rows: kept where the job built them.
        if (org.id === paired.org.id) {
          expect([summary.active_members, summary.features, summary.model_tiers]).toEqual([
            then.active_members,
            then.features,
            then.model_tiers,
          ]);
          expect(summary.active_members).toBe(3);
        }
      }
    }
  });
});
