/**
 * Erasing a member: the name, email and host-app id are gone from every table (events, alerts,
 * webhook messages, audit records, stored Idempotency-Key answers, everything) and from every
 * answer (the events log, the CSV and JSON Lines exports, the members list, breakdowns,
 * conversations, alerts), while every amount and total stays identical.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

const PERSONAL = { external_id: 'erin-ext-7731', name: 'Erin Erasable', email: 'erin@erasable.example' };

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

/** Every table and column value (as text) that holds one of the strings. */
async function tablesHolding(strings: string[]): Promise<string[]> {
  const tables = await t.db.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  const found: string[] = [];
  for (const { tablename } of tables) {
    for (const s of strings) {
      const [row] = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${tablename}" x WHERE strpos(x::text, $1) > 0`,
        [s],
      );
      if (row!.n > 0) found.push(`${tablename}: ${s} (${row!.n} rows)`);
    }
  }
  return found;
}

it('removes the personal data everywhere and keeps every amount', async () => {
  const { org, key } = await createOrgWithKey(t, { name: 'Erase Org' });
  const path = `/v1/orgs/${org.id}`;
  await t.call('POST', `${path}/webhook_endpoints`, { body: { url: 'http://127.0.0.1:9/hook' } });
  const created = await t.call('POST', `${path}/members`, {
    key,
    body: PERSONAL,
    headers: { 'idempotency-key': 'create-erin' },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const memberId: string = created.body.id;
  // A small budget, so usage crosses its thresholds: alerts and webhook messages name the member.
  const budget = await t.call('POST', `${path}/budgets`, {
    key,
    body: { name: 'Erin budget', scope: { kind: 'member', id: memberId }, amount: '0.01' },
  });
  expect(budget.status, JSON.stringify(budget.body)).toBe(201);
  const events = Array.from({ length: 20 }, (_, i) => ({
    id: `erase-${i}`,
    member: PERSONAL.external_id,
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    occurred_at: minutesAgo(30 - i),
    conversation_id: 'conv-erase',
    usage: { input_tokens: 1000 + i, output_tokens: 100 },
  }));
  const ingest = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(ingest.status).toBe(200);
  expect(await tablesHolding([PERSONAL.name])).not.toEqual([]);

  const figures = async () => ({
    summary: (await t.call('GET', `${path}/usage/summary?range=1d`, { key })).body,
    members: (await t.call('GET', `${path}/usage/breakdown?by=member&range=1d`, { key })).body.data.map(
      (r: { credits: string; cost: string; calls: number }) => [r.credits, r.cost, r.calls],
    ),
    balance: (await t.call('GET', `${path}/balance`, { key })).body,
    ledger: (await t.call('GET', `${path}/ledger?limit=1000`, { key })).body.data.map(
      (e: { amount_credits?: string; kind: string }) => [e.kind, e.amount_credits],
    ),
  });
  const before = await figures();

  const erased = await t.call('POST', `${path}/members/${memberId}/erase`, { key });
  expect(erased.status, JSON.stringify(erased.body)).toBe(200);

  const after = await figures();
  const { request_id: _a, ...summaryAfter } = after.summary;
  const { request_id: _b, ...summaryBefore } = before.summary;
  expect({ ...after, summary: summaryAfter }).toEqual({ ...before, summary: summaryBefore });

  const strings = Object.values(PERSONAL);
  const answers = [
    await t.call('GET', `${path}/members?limit=100`, { key }),
    await t.call('GET', `${path}/usage/events?range=1d&limit=100`, { key }),
    await t.call('GET', `${path}/usage/export?format=csv&range=1d`, { key }),
    await t.call('GET', `${path}/usage/export?format=jsonl&range=1d`, { key }),
    await t.call('GET', `${path}/usage/breakdown?by=member&range=1d`, { key }),
    await t.call('GET', `${path}/conversations/conv-erase`, { key }),
    await t.call('GET', `${path}/alerts`, { key }),
  ];
  for (const res of answers) {
    expect(res.status).toBe(200);
    const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
    for (const s of strings) expect(text, s).not.toContain(s);
  }
  // The stored Idempotency-Key answer of the creation included: erase redacts it (test/erasure.test.ts).
  expect(await tablesHolding(strings)).toEqual([]);
});
