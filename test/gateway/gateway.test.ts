/**
 * The gateway through the official, unmodified OpenAI and Anthropic clients: answers pass through
 * unchanged, and each call is recorded with the provider's exact tokens and the same price as the
 * same usage sent to POST /v1/events.
 */
import type { APIError as AnthropicError } from '@anthropic-ai/sdk';
import type { APIError as OpenAIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_HEADERS, CALL_HEADERS, tokenText } from '../support/fakeProviders.ts';
import {
  anthropicClient,
  balance,
  type GatewayFixture,
  gatewayOrg,
  lastEvent,
  openaiClient,
  pricedThroughEvents,
  startGateway,
  UPSTREAM_ANTHROPIC_KEY,
  UPSTREAM_OPENAI_KEY,
} from './fixture.ts';

let g: GatewayFixture;
let orgId: string;
let key: string;
const member = { 'tally-member': 'user_42', 'tally-feature': 'chat' };
const expectedText = Array.from({ length: 12 }, (_, i) => tokenText(i)).join('');

beforeAll(async () => {
  g = await startGateway();
  const created = await gatewayOrg(g);
  orgId = created.org.id;
  key = created.key;
});
afterAll(async () => {
  await g.close();
});

/** Fake provider usage (defaults): 1200 input tokens of which 800 cache reads and 100 cache writes, 12 output. */
const OPENAI_USAGE = { input_tokens: 1200, cache_read_tokens: 800, output_tokens: 12 };
const ANTHROPIC_USAGE = {
  input_tokens: 1200,
  cache_read_tokens: 800,
  cache_write_tokens: 100,
  output_tokens: 12,
};

async function expectRecorded(provider: string, model: string, usage: Record<string, number>) {
  const event = await lastEvent(g, orgId);
  expect(event).toMatchObject({ provider, model, feature: 'chat', member: { external_id: 'user_42' } });
  expect(event.tokens).toMatchObject({
    input: usage.input_tokens,
    output: usage.output_tokens,
    cache_read: usage.cache_read_tokens ?? 0,
    cache_write: usage.cache_write_tokens ?? 0,
  });
  const reference = await pricedThroughEvents(g, { provider, model, usage });
  expect({ credits: event.credits, cost: event.cost }).toEqual(reference);
  // The hold is gone: nothing stays reserved after the call.
  expect((await balance(g, orgId)).held_credits).toBe('0');
}

describe('OpenAI chat completions', () => {
  it('answers a plain call unchanged and records its exact usage and price', async () => {
    const client = openaiClient(g, key, member);
    const { data: answer, response } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say twelve words' }],
        max_completion_tokens: 100,
      })
      .withResponse();
    expect(answer.choices[0]?.message.content).toBe(expectedText);
    // The gateway's own answer object still carries Tally's request id.
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(answer.usage?.prompt_tokens).toBe(1200);
    const upstream = g.fake.requests.at(-1)!;
    expect(upstream.headers.authorization).toBe(`Bearer ${UPSTREAM_OPENAI_KEY}`);
    expect(JSON.stringify(upstream.headers)).not.toContain(key);
    expect(upstream.headers['tally-member']).toBeUndefined();
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
  });

  it('streams chunks through, asks upstream for usage without showing it to a client that did not', async () => {
    const client = openaiClient(g, key, member);
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twelve words' }],
      stream: true,
    });
    let text = '';
    let usageChunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usageChunks++;
    }
    expect(text).toBe(expectedText);
    expect(finish).toBe('stop');
    expect(usageChunks).toBe(0);
    expect(g.fake.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
  });

  it('passes the usage chunk to a client that asked for it', async () => {
    const client = openaiClient(g, key, member);
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twelve words' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const usage = [];
    for await (const chunk of stream) if (chunk.usage) usage.push(chunk.usage);
    expect(usage).toEqual([expect.objectContaining({ prompt_tokens: 1200, completion_tokens: 12 })]);
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
  });
});

describe('OpenAI Responses API', () => {
  it('streams events through and records the usage of response.completed', async () => {
    const client = openaiClient(g, key, member);
    const stream = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'Say twelve words',
      stream: true,
    });
    let text = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
    expect(text).toBe(expectedText);
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
  });

  it('records a plain call', async () => {
    const client = openaiClient(g, key, member);
    const answer = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say twelve words' });
    expect(answer.output_text).toBe(expectedText);
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
  });
});

describe('OpenAI embeddings', () => {
  it('records the input tokens of an embeddings call at their exact price, holding no output', async () => {
    const before = g.fake.requests.length;
    const answer = await openaiClient(g, key, member).embeddings.create({
      model: 'text-embedding-3-small',
      input: ['first text', 'second text'],
      encoding_format: 'float',
    });
    expect(answer.data.map((d) => d.embedding)).toEqual([
      [0.25, -0.5, 0.125],
      [0.25, -0.5, 0.125],
    ]);
    expect(answer.usage.prompt_tokens).toBe(1200);
    // Sent upstream as the client wrote it.
    expect(g.fake.requests[before]!.body).toEqual({
      model: 'text-embedding-3-small',
      input: ['first text', 'second text'],
      encoding_format: 'float',
    });
    await expectRecorded('openai', 'text-embedding-3-small', { input_tokens: 1200, output_tokens: 0 });
    const event = await lastEvent(g, orgId);
    expect(event.tokens).toMatchObject({ input: 1200, output: 0 });
  });

  it('refuses an input that is neither text nor token ids, in the provider format', async () => {
    const bad = await openaiClient(g, key, member)
      .embeddings.create({ model: 'text-embedding-3-small', input: [{ text: 'x' }] as unknown as string[] })
      .then(
        () => null,
        (e: unknown) => e as { status: number },
      );
    expect(bad?.status).toBe(400);
  });
});

describe('Anthropic messages', () => {
  it('answers a plain call unchanged and records cache reads and writes exactly', async () => {
    const client = anthropicClient(g, key, member);
    const answer = await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Say twelve words' }],
    });
    expect(answer.content).toEqual([{ type: 'text', text: expectedText }]);
    const upstream = g.fake.requests.at(-1)!;
    expect(upstream.headers['x-api-key']).toBe(UPSTREAM_ANTHROPIC_KEY);
    expect(upstream.headers['anthropic-version']).toBeTruthy();
    await expectRecorded('anthropic', 'claude-haiku-4-5', ANTHROPIC_USAGE);
  });

  it('streams events through and records message_start and message_delta usage', async () => {
    const client = anthropicClient(g, key, member);
    const stream = client.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Say twelve words' }],
    });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: expectedText }]);
    expect(message.usage.output_tokens).toBe(12);
    await expectRecorded('anthropic', 'claude-haiku-4-5', ANTHROPIC_USAGE);
  });
});

describe('Anthropic 1-hour cache writes', () => {
  // 60 of the 100 cache writes are 1-hour ones. claude-haiku-4-5, USD per 1M: input 1, 5-minute
  // write 1.25 (1.25 x input), 1-hour write 2 (2 x input), read 0.1, output 5.
  // uncached 300 x 1/1M = 0.0003; read 800 x 0.1/1M = 0.00008; 5m write 40 x 1.25/1M = 0.00005;
  // 1h write 60 x 2/1M = 0.00012; output 12 x 5/1M = 0.00006; total 0.00061 USD
  // x markup 1.5 x FX 0.92 = 0.0008418 EUR / credit value 0.01 = 0.08418 credits
  // (all 100 writes at the 5-minute rate would be 0.000565 USD: 0.07797 credits).
  const usage = { ...ANTHROPIC_USAGE, cache_write_1h_tokens: 60 };
  const charged = { credits: '0.08418', cost: '0.0008418' };
  beforeAll(() => g.fake.behave({ cacheWrite1hTokens: 60 }));
  afterAll(() => g.fake.behave({ cacheWrite1hTokens: 0 }));

  it('records them at their own price from a whole answer', async () => {
    await anthropicClient(g, key, member).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Say twelve words' }],
    });
    await expectRecorded('anthropic', 'claude-haiku-4-5', usage);
    expect(await lastEvent(g, orgId)).toMatchObject(charged);
  });

  it('records them from message_start, and bills them with the input while streaming', async () => {
    // About 2.5 s: billed at least once while streaming (every 2 s), input first.
    g.fake.behave({ chunks: 403, chunkDelayMs: 6 });
    try {
      const message = await anthropicClient(g, key, member)
        .messages.stream({
          model: 'claude-haiku-4-5',
          max_tokens: 1000,
          messages: [{ role: 'user', content: 'Go on' }],
        })
        .finalMessage();
      expect(message.usage.cache_creation).toEqual({
        ephemeral_5m_input_tokens: 40,
        ephemeral_1h_input_tokens: 60,
      });
      // 391 more output tokens x 5/1M = 0.001955 USD more: 0.002565 x 1.38 = 0.0035397 EUR -> 0.35397 credits
      await expectRecorded('anthropic', 'claude-haiku-4-5', { ...usage, output_tokens: 403 });
      const event = await lastEvent(g, orgId);
      expect(event).toMatchObject({ credits: '0.35397', cost: '0.0035397' });
      expect(await incrementEntries()).toBeGreaterThanOrEqual(1);
      const [hold] = await g.tally.db.query<{ usage: Record<string, number> }>(
        'SELECT usage FROM authorizations WHERE org_id = $1 AND id = $2',
        [orgId, event.id],
      );
      expect(hold!.usage).toMatchObject({ cache_write_tokens: 100, cache_write_1h_tokens: 60 });
    } finally {
      g.fake.behave({ chunks: 12, chunkDelayMs: 0 });
    }
  });
});

describe('the tally-* attribution headers', () => {
  const attribution = {
    ...member,
    'tally-surface': 'cli',
    'tally-workspace-group': 'platform',
    'tally-conversation-id': 'c1',
    'tally-message-id': 'm2',
    'tally-parent-id': 'm1',
    // Characters outside ASCII travel escaped, as headers are bytes.
    'tally-metadata': '{"conversation_title":"Trip to K\\u00f6ln","tool":"web_search"}',
  };

  it('attribute a streamed call: its event has the surface, group, conversation and message', async () => {
    const stream = await openaiClient(g, key, attribution).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twelve words' }],
      stream: true,
    });
    for await (const _ of stream) {
      // drained: the call is captured when its stream ends
    }
    await expectRecorded('openai', 'gpt-4o-mini', OPENAI_USAGE);
    const event = await lastEvent(g, orgId);
    expect(event).toMatchObject({ surface: 'cli', workspace_group: 'platform', conversation_id: 'c1' });
    const [stored] = await g.tally.db.query<{ message_id: string; parent_id: string }>(
      'SELECT message_id, parent_id, metadata FROM events WHERE org_id = $1 AND id = $2',
      [orgId, event.id],
    );
    expect(stored).toEqual({
      message_id: 'm2',
      parent_id: 'm1',
      metadata: { conversation_title: 'Trip to Köln', tool: 'web_search', authorization_id: event.id },
    });
    const chat = await g.tally.call('GET', `/v1/orgs/${orgId}/conversations/c1`);
    expect(chat.body).toMatchObject({ messages: 1, credits: event.credits, title: 'Trip to Köln' });
    // They are Tally's: the provider never sees them.
    const upstream = g.fake.requests.at(-1)!;
    expect(Object.keys(upstream.headers).filter((h) => h.startsWith('tally-'))).toEqual([]);
  });

  it('are optional: a call that names no surface has none', async () => {
    await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twelve words' }],
    });
    expect(await lastEvent(g, orgId)).toMatchObject({ surface: null, conversation_id: null });
  });

  it("refuse a bad value with a 400 in the provider's format naming the header, before any hold", async () => {
    const requests = g.fake.requests.length;
    const before = await lastEvent(g, orgId);
    const refused = await openaiClient(g, key, { ...attribution, 'tally-conversation-id': 'c'.repeat(201) })
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] })
      .catch((e: unknown) => e as OpenAIError);
    expect(refused).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      code: 'invalid_header',
      error: { message: 'tally-conversation-id is longer than 200 characters' },
    });
    const anthropicRefused = await anthropicClient(g, key, { ...member, 'tally-surface': 's'.repeat(201) })
      .messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'Hi' }],
      })
      .catch((e: unknown) => e as AnthropicError);
    expect(anthropicRefused).toMatchObject({
      status: 400,
      error: {
        error: { type: 'invalid_request_error', message: 'tally-surface is longer than 200 characters' },
      },
    });
    const badMetadata = {
      'not json': 'tally-metadata must be JSON (characters outside ASCII escaped as \\uXXXX)',
      '["a"]': 'tally-metadata must be a JSON object',
      '{"authorization_id":"x"}': "tally-metadata may not set authorization_id: it is Tally's",
      '{"note":"a\\u0000b"}': expect.stringMatching(/^tally-metadata note must /),
      [`{"a":"${'x'.repeat(8200)}"}`]: 'tally-metadata is longer than 8192 bytes',
    };
    for (const [value, message] of Object.entries(badMetadata)) {
      const refusal = await openaiClient(g, key, { ...member, 'tally-metadata': value })
        .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] })
        .catch((e: unknown) => e as OpenAIError);
      expect(refusal, value.slice(0, 30)).toMatchObject({
        status: 400,
        code: 'invalid_header',
        error: { message },
      });
    }
    expect(g.fake.requests.length).toBe(requests);
    expect((await lastEvent(g, orgId)).id).toBe(before.id);
    expect((await balance(g, orgId)).held_credits).toBe('0');
  });
});

describe("the provider's answer headers", () => {
  /** None of the headers about the operator's provider account, all of those about the call. */
  function expectCallHeadersOnly(headers: Headers, provider: 'openai' | 'anthropic') {
    for (const name of Object.keys(ACCOUNT_HEADERS[provider])) expect(headers.get(name)).toBeNull();
    for (const [name, value] of Object.entries(CALL_HEADERS[provider])) expect(headers.get(name)).toBe(value);
  }

  it("pass on what tells about the call, never what tells about the operator's account", async () => {
    const messages = [{ role: 'user' as const, content: 'Hi' }];
    const openai = openaiClient(g, key, member);
    const plain = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
    expectCallHeadersOnly(plain.response.headers, 'openai');
    const streamed = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages, stream: true })
      .withResponse();
    for await (const _ of streamed.data);
    expectCallHeadersOnly(streamed.response.headers, 'openai');
    const anthropic = anthropicClient(g, key, member);
    const message = await anthropic.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 100, messages })
      .withResponse();
    expectCallHeadersOnly(message.response.headers, 'anthropic');

    const rateLimited = { type: 'error', error: { type: 'rate_limit_error', message: 'Slow down' } };
    g.fake.behave({ failWith: { status: 429, body: rateLimited } });
    try {
      const refused = await anthropic.messages
        .create({ model: 'claude-haiku-4-5', max_tokens: 100, messages })
        .catch((e: unknown) => e as AnthropicError);
      expect(refused).toMatchObject({ status: 429, error: rateLimited });
      const headers = (refused as AnthropicError).headers!;
      expectCallHeadersOnly(headers, 'anthropic');
      expect([headers.get('retry-after'), headers.get('x-should-retry')]).toEqual(['1', 'true']);
      const openaiRefused = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages })
        .catch((e: unknown) => e as OpenAIError);
      expect(openaiRefused).toMatchObject({ status: 429 });
      expectCallHeadersOnly((openaiRefused as OpenAIError).headers!, 'openai');
    } finally {
      g.fake.behave({ failWith: null });
    }
  });
});

it('documents the gateway endpoints and settings in the served OpenAPI document', async () => {
  const doc = await g.tally.call('GET', '/openapi.json');
  expect(Object.keys(doc.body.paths)).toEqual(
    expect.arrayContaining([
      '/gateway/openai/v1/chat/completions',
      '/gateway/openai/v1/responses',
      '/gateway/openai/v1/embeddings',
      '/gateway/anthropic/v1/messages',
      '/gateway/openai/v1/models',
      '/gateway/anthropic/v1/models',
      '/v1/orgs/{org}/gateway_keys',
      '/v1/orgs/{org}/gateway/upstreams/{provider}',
    ]),
  );
});

/** Increments of the call recorded last: usage billed while it streamed (the capture's entries carry its event). */
async function incrementEntries(): Promise<number> {
  const event = await lastEvent(g, orgId);
  const [row] = await g.tally.db.query<{ n: number }>(
    `SELECT count(DISTINCT created_at)::int AS n FROM ledger_entries
      WHERE org_id = $1 AND authorization_id = $2 AND kind IN ('debit', 'overage') AND event_id IS NULL`,
    [orgId, event.id],
  );
  return row!.n;
}

it('bills a long stream while it streams and still records exactly the price of its usage', async () => {
  // About 2.5 s each: billed at least once while streaming (every 2 s), the rest at capture.
  g.fake.behave({ chunks: 403, chunkDelayMs: 6 });
  try {
    for (const model of ['claude-haiku-4-5', 'claude-opus-4-1']) {
      const message = await anthropicClient(g, key, member)
        .messages.stream({ model, max_tokens: 1000, messages: [{ role: 'user', content: 'Go on' }] })
        .finalMessage();
      expect(message.usage.output_tokens).toBe(403);
      await expectRecorded('anthropic', model, { ...ANTHROPIC_USAGE, output_tokens: 403 });
      expect(await incrementEntries()).toBeGreaterThanOrEqual(1);
    }
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4.1-nano',
      messages: [{ role: 'user', content: 'Go on' }],
      stream: true,
    });
    for await (const _ of stream);
    await expectRecorded('openai', 'gpt-4.1-nano', { ...OPENAI_USAGE, output_tokens: 403 });
    expect(await incrementEntries()).toBeGreaterThanOrEqual(1);
  } finally {
    g.fake.behave({ chunks: 12, chunkDelayMs: 0 });
  }
});

it('bills a stream its hold covers every 2 seconds, not every few tokens', async () => {
  try {
    // 403 tokens at once: the hold (1000 output tokens) covers them, the capture bills them all.
    g.fake.behave({ chunks: 403 });
    const fast = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Go on' }],
      max_completion_tokens: 1000,
      stream: true,
    });
    for await (const _ of fast);
    await expectRecorded('openai', 'gpt-4o-mini', { ...OPENAI_USAGE, output_tokens: 403 });
    expect(await incrementEntries()).toBe(0);
    // 150 tokens over about 3 s: billed once while streaming (twice if the machine is slow), then captured.
    g.fake.behave({ chunks: 150, chunkDelayMs: 20 });
    const started = performance.now();
    const slow = anthropicClient(g, key, member).messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 1000,
      messages: [{ role: 'user', content: 'Go on' }],
    });
    await slow.finalMessage();
    const seconds = (performance.now() - started) / 1000;
    await expectRecorded('anthropic', 'claude-haiku-4-5', { ...ANTHROPIC_USAGE, output_tokens: 150 });
    const increments = await incrementEntries();
    expect(increments).toBeGreaterThanOrEqual(1);
    expect(increments).toBeLessThanOrEqual(Math.floor(seconds / 2));
  } finally {
    g.fake.behave({ chunks: 12, chunkDelayMs: 0 });
  }
});

it("leaves an answer's final usage to its capture, even when the prompt outgrew the hold", async () => {
  // The hold expected a prompt of 'Go on' and 100 output tokens; the provider reports 1 200 prompt
  // tokens in its usage chunk, which comes in the same read as the last token: past the hold, but
  // the capture that follows at once bills it, so no increment is sent for it.
  try {
    g.fake.behave({ chunks: 20 });
    for (const stream of [true, false]) {
      const answer = await openaiClient(g, key, member).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Go on' }],
        max_completion_tokens: 100,
        stream: true,
        stream_options: { include_usage: stream },
      });
      for await (const _ of answer);
      await expectRecorded('openai', 'gpt-4o-mini', { ...OPENAI_USAGE, output_tokens: 20 });
      expect(await incrementEntries()).toBe(0);
    }
    const message = await anthropicClient(g, key, member)
      .messages.stream({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Go on' }],
      })
      .finalMessage();
    expect(message.usage.output_tokens).toBe(20);
    await expectRecorded('anthropic', 'claude-haiku-4-5', { ...ANTHROPIC_USAGE, output_tokens: 20 });
  } finally {
    g.fake.behave({ chunks: 12 });
  }
});

it('passes the model list through, unmetered, to a caller with a valid key', async () => {
  const openaiModels = await openaiClient(g, key).models.list();
  expect(openaiModels.data.map((m) => m.id)).toEqual(['gpt-4o-mini']);
  const anthropicModels = await anthropicClient(g, key).models.list();
  expect(anthropicModels.data.map((m) => m.id)).toEqual(['claude-haiku-4-5']);
  expect(g.fake.requests.at(-1)!.headers['x-api-key']).toBe(UPSTREAM_ANTHROPIC_KEY);
  const refused = await openaiClient(g, 'tally_sk_wrong')
    .models.list()
    .catch((e: { status?: number }) => e);
  expect(refused).toMatchObject({ status: 401 });
});
