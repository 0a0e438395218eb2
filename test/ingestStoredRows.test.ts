/**
 * What one ingest batch stores per event when its events differ: each event keeps the pricing
 * terms it was priced with (a batch sends each distinct set once), and a batch mixing ids stored
 * before with new ones answers each in request order and counts only the new ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

const event = (id: string, orgId: string, model: string, minutes: number) => ({
  id,
  org_id: orgId,
  member: `m-${id.length % 3}`,
  feature: 'Chat',
  provider: model.startsWith('claude') ? 'anthropic' : 'openai',
  model,
  occurred_at: minutesAgo(minutes),
  usage: { input_tokens: 1000 + id.length, output_tokens: 100 },
});

const send = (events: unknown[]) => t.call('POST', '/v1/events', { body: { events } });

describe('one batch, events of several orgs and models', () => {
  it('stores on each event the pricing terms of its own org and model', async () => {
    const eur = await createOrgWithKey(t, { name: 'Stored EUR', credit_value: '0.01' });
    const usd = await createOrgWithKey(t, { name: 'Stored USD', currency: 'USD', credit_value: '0.02' });
    const models = ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-haiku-latest'];
    const events = Array.from({ length: 30 }, (_, i) =>
      event(`p-${i}`, (i % 2 === 0 ? eur : usd).org.id, models[i % 3]!, 5 + i),
    );
    const res = await send(events);
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(events.map(() => 'accepted'));

    const rows = await t.db.query<{
      org_id: string;
      model: string;
      provider_price_id: string;
      pricing: Record<string, unknown>;
    }>(
      `SELECT org_id, model, provider_price_id::text AS provider_price_id, pricing FROM events
        WHERE org_id = ANY($1::text[]) ORDER BY id`,
      [[eur.org.id, usd.org.id]],
    );
    expect(rows).toHaveLength(30);
    const priceOf = new Map<string, string>();
    for (const row of rows) {
      expect(row.pricing).toMatchObject({
        provider_price_id: row.provider_price_id,
        credit_value: row.org_id === eur.org.id ? '0.010000' : '0.020000',
        billing_mode: 'credits',
      });
      // One catalog price per model, whichever org used it.
      expect(priceOf.get(row.model) ?? row.provider_price_id).toBe(row.provider_price_id);
      priceOf.set(row.model, row.provider_price_id);
    }
    expect(new Set(priceOf.values()).size).toBe(3);
    // The USD org converts at no FX rate, the EUR org at the operator's rate: their terms differ.
    const fxOf = (orgId: string) =>
      new Set(rows.filter((r) => r.org_id === orgId).map((r) => r.pricing.fx_rate));
    expect(fxOf(usd.org.id)).toEqual(new Set(['1']));
    expect(fxOf(eur.org.id).size).toBe(1);
  });

  it('answers ids stored before as duplicate, in request order, and counts only the new ones', async () => {
    const a = await createOrgWithKey(t, { name: 'Stored mix A' });
    const b = await createOrgWithKey(t, { name: 'Stored mix B' });
    const before = [event('k-old-2', a.org.id, 'gpt-4o', 9), event('a-old-1', b.org.id, 'gpt-4o-mini', 8)];
    expect((await send(before)).status).toBe(200);
    // Ids out of key order and interleaved across orgs, so request order, key order and the
    // positions of the stored ones all differ.
    const batch = [
      event('z-new-1', a.org.id, 'gpt-4o', 7),
      before[0]!,
      event('b-new-2', b.org.id, 'gpt-4o', 6),
      event('m-new-3', a.org.id, 'gpt-4o-mini', 5),
      before[1]!,
      event('a-new-4', b.org.id, 'gpt-4o-mini', 4),
    ];
    const res = await send(batch);
    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { id: string; status: string }) => [r.id, r.status])).toEqual([
      ['z-new-1', 'accepted'],
      ['k-old-2', 'duplicate'],
      ['b-new-2', 'accepted'],
      ['m-new-3', 'accepted'],
      ['a-old-1', 'duplicate'],
      ['a-new-4', 'accepted'],
    ]);
    const [sums] = await t.db.query<{ events: string; calls: string; daily: string; credits_match: boolean }>(
      `SELECT (SELECT count(*) FROM events WHERE org_id = ANY($1::text[]))::text AS events,
              (SELECT sum(calls) FROM usage_hourly WHERE org_id = ANY($1::text[]))::text AS calls,
              (SELECT sum(calls) FROM usage_daily_dim WHERE org_id = ANY($1::text[]) AND dimension = 'all')::text AS daily,
              (SELECT sum(credits) FROM events WHERE org_id = ANY($1::text[]))
                = (SELECT sum(credits) FROM usage_hourly WHERE org_id = ANY($1::text[])) AS credits_match`,
      [[a.org.id, b.org.id]],
    );
    expect(sums).toEqual({ events: '6', calls: '6', daily: '6', credits_match: true });
  });
});
