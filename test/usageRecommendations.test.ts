/**
 * Recommendations: each kind appears exactly when its rule holds, savings equal what the same
 * calls are charged on the suggested model (priced independently, through POST /v1/events in a
 * twin org), and every answer parses with the route schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import { UsageRecommendationsSchema } from '../src/http/routes/usageInsights.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const micro = (s: string) => decimalUnits(s, 6);

const chatCall = { input_tokens: 3000, output_tokens: 800 };
const bigContext = { input_tokens: 120_000, output_tokens: 200 };

function events(prefix: string, n: number, shape: Record<string, unknown>) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    occurred_at: minutesAgo(10 + (i % 50)),
    ...shape,
  }));
}

async function send(key: string, list: unknown[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events: list } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
  return r.body.results as { credits: string }[];
}

async function recommendations(orgId: string, key: string) {
  const r = await t.call('GET', `/v1/orgs/${orgId}/usage/recommendations?range=7d`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return UsageRecommendationsSchema.parse(r.body);
}

describe('usage recommendations: happy path', () => {
  it('suggests the cheaper model the org already uses, with the saving its calls would have made', async () => {
    const { org, key } = await createOrgWithKey(t);
    const chat = { member: 'ana', feature: 'chat', provider: 'openai', model: 'gpt-4o', usage: chatCall };
    await send(key, events('chat', 40, chat));
    await send(key, events('tag', 5, { ...chat, feature: 'tagging', model: 'gpt-4o-mini' }));

    // The same call on each model, charged in a twin org with the same settings.
    const twin = await createOrgWithKey(t);
    const [onBig] = await send(twin.key, events('big', 1, chat));
    const [onMini] = await send(twin.key, events('mini', 1, { ...chat, model: 'gpt-4o-mini' }));
    const expected = 40n * (micro(onBig!.credits) - micro(onMini!.credits));

    const body = await recommendations(org.id, key);
    const switchChat = body.data.find((r) => r.kind === 'switch_model' && r.feature === 'chat');
    expect(switchChat).toMatchObject({
      current_model: 'openai/gpt-4o',
      suggested_model: 'openai/gpt-4o-mini',
      calls: 40,
    });
    expect(micro(switchChat!.savings!)).toBe(expected);
    // Nothing cheaper than the cheapest model the org uses.
    expect(body.data.some((r) => r.kind === 'switch_model' && r.feature === 'tagging')).toBe(false);
    // Ranked by saving: the switch comes before advice without a figure.
    expect(body.data[0]!.kind).toBe('switch_model');
    expect(body.data.at(-1)!.kind).toBe('set_limit');
  });

  it('suggests prompt caching for large uncached inputs, and stops once the input is cached', async () => {
    const { org, key } = await createOrgWithKey(t);
    const shape = {
      member: 'ana',
      feature: 'research',
      provider: 'anthropic',
      model: 'claude-3-5-sonnet-latest',
    };
    await send(key, events('r', 20, { ...shape, usage: bigContext }));
    const body = await recommendations(org.id, key);
    const caching = body.data.find((r) => r.kind === 'prompt_caching');
    expect(caching).toMatchObject({
      feature: 'research',
      current_model: 'anthropic/claude-3-5-sonnet-latest',
    });
    expect(micro(caching!.savings!)).toBeGreaterThan(0n);
    expect(Number(caching!.savings_share)).toBeGreaterThan(0);

    const cached = await createOrgWithKey(t);
    await send(
      cached.key,
      events('c', 20, { ...shape, usage: { ...bigContext, cache_read_tokens: 100_000 } }),
    );
    const after = await recommendations(cached.org.id, cached.key);
    expect(after.data.some((r) => r.kind === 'prompt_caching')).toBe(false);
  });

  it('prices calls above a long-context threshold against the standard rate of the same tokens', async () => {
    const { org, key } = await createOrgWithKey(t);
    const shape = { member: 'ana', feature: 'research', provider: 'google', model: 'gemini-2.5-pro' };
    const long = { input_tokens: 250_000, output_tokens: 1_000 };
    await send(key, [
      ...events('long', 8, { ...shape, usage: long }),
      ...events('short', 12, { ...shape, usage: { input_tokens: 20_000, output_tokens: 500 } }),
      // Long too, but on a model without long-context tiers.
      ...events('flat', 5, { ...shape, provider: 'openai', model: 'gpt-4.1', usage: long }),
    ]);
    // The standard rate of a 250k call, charged independently: two 125k halves, each under the
    // 200k threshold, cost what the whole would at the rate below it (pricing is linear there).
    const twin = await createOrgWithKey(t);
    const [whole] = await send(twin.key, events('whole', 1, { ...shape, usage: long }));
    const halves = await send(
      twin.key,
      events('half', 2, { ...shape, usage: { input_tokens: 125_000, output_tokens: 500 } }),
    );
    const perCall = micro(whole!.credits) - micro(halves[0]!.credits) - micro(halves[1]!.credits);
    expect(perCall).toBeGreaterThan(0n);

    const body = await recommendations(org.id, key);
    const found = body.data.filter((r) => r.kind === 'long_context');
    expect(found).toHaveLength(1);
    const rec = found[0]!;
    expect(rec).toMatchObject({
      feature: 'research',
      current_model: 'google/gemini-2.5-pro',
      calls: 8,
      long_context: { threshold_tokens: 200_000, calls: 20, long_calls: 8, share_of_calls: '40' },
    });
    // The eight calls are priced as one sum (rounded once), the twin's call by call: at most a
    // micro-credit apart per call.
    const extra = micro(rec.long_context!.extra);
    expect(extra - 8n * perCall <= 24n && 8n * perCall - extra <= 24n, `${extra} vs ${8n * perCall}`).toBe(
      true,
    );
    expect(rec.savings).toBe(rec.long_context!.extra);
    expect(rec.detail).toContain('8 of 20 calls');

    // Under a filter that leaves out the long calls, nothing to say.
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/recommendations?range=7d&member=nobody`, { key });
    expect(UsageRecommendationsSchema.parse(r.body).data.some((x) => x.kind === 'long_context')).toBe(false);
  });

  it('names a member who drives most of the spend, and asks for a limit only while none is set', async () => {
    const { org, key } = await createOrgWithKey(t);
    const shape = { feature: 'chat', provider: 'openai', model: 'gpt-4o-mini', usage: chatCall };
    await send(key, [
      ...events('heavy', 30, { ...shape, member: 'heavy' }),
      ...events('a', 3, { ...shape, member: 'light-a' }),
      ...events('b', 3, { ...shape, member: 'light-b' }),
    ]);
    const body = await recommendations(org.id, key);
    const review = body.data.find((r) => r.kind === 'review_member');
    expect(review?.title).toContain('heavy');
    expect(body.data.some((r) => r.kind === 'set_limit')).toBe(true);

    const set = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '50', allowed_limit: '100' },
    });
    expect(set.status).toBe(200);
    const after = await recommendations(org.id, key);
    expect(after.data.some((r) => r.kind === 'set_limit')).toBe(false);
  });

  it('answers an empty list of savings for an org without usage', async () => {
    const { org, key } = await createOrgWithKey(t);
    const body = await recommendations(org.id, key);
    expect(body.total_spend).toBe('0');
    expect(body.data.map((r) => r.kind)).toEqual(['set_limit']);
  });
});

describe('usage recommendations: errors', () => {
  it('rejects an unknown range with the field named', async () => {
    const { org, key } = await createOrgWithKey(t);
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/recommendations?range=fortnight`, { key });
    expect(r.status).toBe(400);
    expect(r.body.param).toBe('range');
  });
});
