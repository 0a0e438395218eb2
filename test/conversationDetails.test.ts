/**
 * A conversation's message-level details: the chat's title (metadata.conversation_title), the output
 * split (metadata.output_tokens), the processing time (metadata.processing_ms) and each message's
 * exact pricing breakdown by component, which adds up to the message's credits and cost exactly for
 * credits, BYOM and BYOK orgs alike. Metadata of the wrong type is ignored, never an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversationUsageSchema } from '../src/http/routes/usageInsights.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';
import { cost, credits, sum } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const call = {
  member: 'u1',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  conversation_id: 'chat-1',
};

async function send(key: string, events: unknown[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
}

async function conversation(orgId: string, key: string, id = 'chat-1') {
  const r = await t.call('GET', `/v1/orgs/${orgId}/conversations/${id}`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return ConversationUsageSchema.parse(r.body);
}

/** Every message's components add up to its credits and cost exactly. */
function expectComponentsAddUp(c: ReturnType<typeof ConversationUsageSchema.parse>) {
  for (const m of c.data) {
    expect(m.components.length).toBeGreaterThan(0);
    expect(sum(m.components, (p) => credits(p.credits))).toBe(credits(m.credits));
    expect(sum(m.components, (p) => cost(p.cost))).toBe(cost(m.cost));
  }
}

describe('conversation details', () => {
  it('sums output splits and processing times per message and in total, and takes the latest title', async () => {
    // A credit value with six decimals: component costs carry twelve.
    const { org, key } = await createOrgWithKey(t, {
      currency: 'USD',
      timezone: 'UTC',
      credit_value: '0.012345',
    });
    const longTitle = 'Budget review '.repeat(20);
    await send(key, [
      // The first event's id sorts last: the latest title is the latest by time, not by id.
      {
        ...call,
        id: 'z1',
        message_id: 'm1',
        occurred_at: minutesAgo(10),
        usage: { input_tokens: 1234, output_tokens: 420 },
        metadata: {
          conversation_title: '  Q3 Marketing Analysis\n',
          output_tokens: { response: 300, tools: 120 },
          processing_ms: 2400,
        },
      },
      {
        ...call,
        id: 'a2',
        message_id: 'm1',
        occurred_at: minutesAgo(9),
        usage: { input_tokens: 5678, cache_read_tokens: 1234, output_tokens: 77 },
        metadata: { output_tokens: { response: 77 }, processing_ms: 1100.6 },
      },
      {
        ...call,
        id: 'b1',
        message_id: 'm2',
        occurred_at: minutesAgo(5),
        usage: { input_tokens: 999, output_tokens: 333 },
        metadata: { conversation_title: longTitle, output_tokens: { response: 200, tools: 133 } },
      },
      // A blank title later still leaves the latest non-empty one.
      {
        ...call,
        id: 'b2',
        message_id: 'm2',
        occurred_at: minutesAgo(4),
        usage: { input_tokens: 10, output_tokens: 1 },
        metadata: { conversation_title: ' \t ', processing_ms: 0 },
      },
    ]);
    const c = await conversation(org.id, key);
    expect(c.title).toBe(longTitle.trim().slice(0, 200));
    expect(c.data.map((m) => [m.message_id, m.output_breakdown, m.processing_ms])).toEqual([
      ['m1', { response: 377, tools: 120 }, 3500],
      ['m2', { response: 200, tools: 133 }, 0],
    ]);
    expect(c.output_breakdown).toEqual({ response: 577, tools: 253 });
    expect(c.processing_ms).toBe(3500);

    // The components are the events' stored parts summed per message, each valued at the credit value.
    const stored = await t.db.query<{
      message_id: string;
      components: { component: string; credits: string }[];
    }>(`SELECT message_id, components FROM events WHERE org_id = $1 ORDER BY id`, [org.id]);
    for (const m of c.data) {
      const parts = stored.filter((e) => e.message_id === m.message_id).flatMap((e) => e.components);
      expect(m.components.map((p) => p.component)).toEqual(
        m.message_id === 'm1' ? ['input', 'cache_read', 'output'] : ['input', 'output'],
      );
      for (const p of m.components) {
        const expected = sum(
          parts.filter((s) => s.component === p.component),
          (s) => credits(s.credits),
        );
        expect(credits(p.credits)).toBe(expected);
        expect(cost(p.cost)).toBe(expected * 12_345n);
      }
    }
    expect(c.data[0]!.components.find((p) => p.component === 'input')!.quantity).toBe('5678'); // uncached: 1234 + (5678 - 1234)
    expect(c.data[0]!.components.find((p) => p.component === 'output')!.quantity).toBe('497');
    expectComponentsAddUp(c);
    expect(sum(c.data, (m) => credits(m.credits))).toBe(credits(c.credits));
  });

  it('leaves the title, splits and processing time null when no event says', async () => {
    const { org, key } = await createOrgWithKey(t);
    await send(key, [
      { ...call, id: 'x', occurred_at: minutesAgo(3), usage: { input_tokens: 10, output_tokens: 5 } },
    ]);
    const c = await conversation(org.id, key);
    expect([c.title, c.output_breakdown, c.processing_ms]).toEqual([
      null,
      { response: null, tools: null },
      null,
    ]);
    expect([c.data[0]!.output_breakdown, c.data[0]!.processing_ms]).toEqual([
      { response: null, tools: null },
      null,
    ]);
    expectComponentsAddUp(c);
  });

  it('ignores metadata of the wrong type or sign, and token counts that are no whole number', async () => {
    const { org, key } = await createOrgWithKey(t);
    const bad = [
      { processing_ms: '1200', conversation_title: 42, output_tokens: { response: -1, tools: '3' } },
      { processing_ms: -5, conversation_title: ['x'], output_tokens: 'lots', input_tokens: { message: -3 } },
      { processing_ms: 1e300, output_tokens: { response: 1e300 }, input_tokens: [1] },
      { processing_ms: { ms: 3 }, output_tokens: null, conversation_title: null },
      {
        output_tokens: { response: 2.5, tools: 0.5 },
        input_tokens: { message: 1.25, context: 3.75, files: 1e-7 },
        files: [
          { id: 'f-bad', name: 'notes.txt', size_bytes: -5, extracted_tokens: 2.5 },
          { id: 'f-odd', size_bytes: '10', extracted_tokens: 1e300 },
        ],
      },
    ];
    await send(
      key,
      bad.map((metadata, i) => ({
        ...call,
        id: `bad-${i}`,
        message_id: `m${i % 2}`,
        occurred_at: minutesAgo(10 - i),
        usage: { input_tokens: 10, output_tokens: 5 },
        metadata,
      })),
    );
    const c = await conversation(org.id, key);
    for (const figures of [c, ...c.data]) {
      expect(figures.output_breakdown).toEqual({ response: null, tools: null });
      expect(figures.input_breakdown).toEqual({ message: null, context: null, files: null });
      expect(figures.processing_ms).toBeNull();
    }
    expect(c.title).toBeNull();
    expect(c.files).toEqual([
      { id: 'f-bad', name: 'notes.txt', size_bytes: null, extracted_tokens: null, messages: 1 },
      { id: 'f-odd', name: null, size_bytes: null, extracted_tokens: null, messages: 1 },
    ]);
  });

  it('splits a BYOM message’s rounded cost over its components, and charges BYOK ones nothing', async () => {
    const byom = await createOrgWithKey(t, { currency: 'USD', timezone: 'UTC', billing_mode: 'byom' });
    // Five input tokens cost 0.0000125 USD, rounded to 0.000012; with three output tokens 0.0000425,
    // rounded to 0.000042 and split 0.000012 + 0.00003.
    await send(byom.key, [
      { ...call, id: 'i', message_id: 'm', occurred_at: minutesAgo(3), usage: { input_tokens: 5 } },
      {
        ...call,
        id: 'io',
        message_id: 'm',
        occurred_at: minutesAgo(2),
        usage: { input_tokens: 5, output_tokens: 3 },
      },
    ]);
    const b = await conversation(byom.org.id, byom.key);
    expect(b.data[0]!.components).toEqual([
      { component: 'input', quantity: '10', credits: '0', cost: '0.000024' },
      { component: 'output', quantity: '3', credits: '0', cost: '0.00003' },
    ]);
    expect(b.data[0]!.cost).toBe('0.000054');
    expectComponentsAddUp(b);

    const byok = await createOrgWithKey(t, { billing_mode: 'byok' });
    await send(byok.key, [
      {
        ...call,
        id: 'k',
        message_id: 'm',
        occurred_at: minutesAgo(3),
        usage: { input_tokens: 7, output_tokens: 2 },
      },
      // A model no price is known for: an unpriced call.
      {
        ...call,
        model: 'no-such-model',
        id: 'u',
        message_id: 'm',
        occurred_at: minutesAgo(2),
        usage: { input_tokens: 1 },
      },
    ]);
    const k = await conversation(byok.org.id, byok.key);
    expect(k.data[0]!.components).toEqual([
      { component: 'input', quantity: '7', credits: '0', cost: '0' },
      { component: 'output', quantity: '2', credits: '0', cost: '0' },
      { component: 'call', quantity: '1', credits: '0', cost: '0' },
    ]);
    expectComponentsAddUp(k);
  });
});
