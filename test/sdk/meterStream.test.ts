/**
 * meterStream against a real Tally, wrapping the official openai and @anthropic-ai/sdk clients'
 * streams, which talk to a local server answering in each provider's wire format.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tally } from '../../sdk/src/index.ts';
import { decimalUnits, formatCredits } from '../../src/domain/money.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';
import { type Listening, type ModelServer, serveTally, startModelServer } from './support.ts';

let t: TestTally;
let server: Listening;
const models: ModelServer[] = [];
beforeAll(async () => {
  t = await startTally();
  server = await serveTally(t);
});
afterAll(async () => {
  for (const model of models) await model.close();
  await server.close();
  await t.close();
});

async function modelServer(chunks: (body: any) => unknown[]) {
  const model = await startModelServer(chunks);
  models.push(model);
  return model;
}

async function storedEvent(orgId: string, id: string) {
  const [row] = await t.db.query<Record<string, string>>(
    'SELECT credits, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens FROM events WHERE org_id = $1 AND id = $2',
    [orgId, id],
  );
  return row;
}

// 400 characters a chunk: 80 output tokens each by the SDK's estimate (5 characters a token).
const WORDS = 'abcd'.repeat(100);

function openAIChunks(count: number, usage: Record<string, unknown>) {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o' };
  return [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
    ...Array.from({ length: count }, () => ({
      ...base,
      choices: [{ index: 0, delta: { content: WORDS }, finish_reason: null }],
    })),
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    { ...base, choices: [], usage },
  ];
}

describe('meterStream', () => {
  it('stops an OpenAI stream when Tally answers stop, and captures what Tally billed', async () => {
    const { org, key } = await createOrgWithKey(t);
    // EUR 0.10 a month = 10 credits; 1 000 gpt-4o input tokens are 0.345 credits and output 1.38
    // per 1 000 tokens, so the limit is reached after about 7 000 output tokens (about 87 chunks)
    // of the 1 600 000 this stream would send.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: '0.05', allowed_limit: '0.1' },
    });
    const model = await modelServer(() =>
      openAIChunks(20_000, { prompt_tokens: 1000, completion_tokens: 1_600_000, total_tokens: 1_601_000 }),
    );
    const openai = new OpenAI({ apiKey: 'sk-local', baseURL: `${model.url}/v1`, maxRetries: 0 });
    const tally = new Tally({ apiKey: key, baseUrl: server.url });

    const hold = await tally.authorize({
      member: 'u1',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { input_tokens: 1000, max_output_tokens: 1_600_000 },
    });
    expect(hold).toMatchObject({ approved: true, reason: 'partial' });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Write a long story' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const metered = tally.meterStream(stream, {
      provider: 'openai',
      authorization: hold,
      incrementEveryTokens: 500,
      inputTokens: 1000,
    });
    let received = 0;
    for await (const chunk of metered) if (chunk.choices[0]?.delta.content) received++;
    const outcome = await metered.outcome;

    expect(outcome.stopped).toBe(true);
    expect(outcome.increments.at(-1)!.action).toBe('stop');
    // The stream ended early and the SDK closed the model's connection.
    expect(received).toBeGreaterThan(80);
    expect(received).toBeLessThan(95);
    await model.clientHungUp;
    expect(model.sent()).toBeLessThan(20_000);
    // Captured: the input the hold was placed with and the output that streamed (estimated).
    expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: received * 80 });
    expect(outcome.capture).toMatchObject({ status: 'captured', event_id: hold.id });
    // The credits captured are the ones Tally recorded and counted against the limit, within it.
    const event = await storedEvent(org.id, hold.id!);
    expect(formatCredits(BigInt(event!.credits!))).toBe(outcome.capture.credits);
    const charged = decimalUnits(outcome.capture.credits, 6);
    expect(charged).toBeGreaterThanOrEqual(decimalUnits(outcome.increments.at(-1)!.total_charged_credits, 6));
    expect(charged).toBeLessThanOrEqual(10_000_000n);
    const limits = await t.call('GET', `/v1/orgs/${org.id}/limits`);
    expect(limits.body).toMatchObject({ spent: outcome.capture.cost, held: '0' });
  });

  it('meters a whole Anthropic stream and captures its exact usage, cache tokens included', async () => {
    const { org, key } = await createOrgWithKey(t);
    const message = {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-0',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 100,
        cache_read_input_tokens: 2000,
        cache_creation_input_tokens: 500,
        output_tokens: 1,
      },
    };
    const model = await modelServer(() => [
      { type: 'message_start', message },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      ...Array.from({ length: 30 }, () => ({
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: 'word ' },
      })),
      { type: 'content_block_stop', index: 0 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 31 },
      },
      { type: 'message_stop' },
    ]);
    const anthropic = new Anthropic({ apiKey: 'sk-ant-local', baseURL: model.url, maxRetries: 0 });
    const tally = new Tally({ apiKey: key, baseUrl: server.url });
    const hold = await tally.authorize({
      member: 'u1',
      feature: 'Chat',
      provider: 'anthropic',
      model: 'claude-sonnet-4-0',
      estimate: { input_tokens: 3000, max_output_tokens: 1000 },
    });
    const stream = await anthropic.messages.create({
      model: 'claude-sonnet-4-0',
      max_tokens: 1000,
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
    });
    const metered = tally.meterStream(stream, {
      provider: 'anthropic',
      authorization: hold.id!,
      incrementEveryTokens: 10,
      eventId: 'msg_1',
    });
    let text = '';
    for await (const event of metered) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    const outcome = await metered.outcome;

    expect(text).toBe('word '.repeat(30));
    expect(outcome.stopped).toBe(false);
    // Increments went out while streaming (input from message_start, estimated output so far).
    expect(outcome.increments.length).toBeGreaterThanOrEqual(3);
    expect(outcome.usage).toEqual({
      input_tokens: 2600,
      cache_read_tokens: 2000,
      cache_write_tokens: 500,
      output_tokens: 31,
    });
    expect(await storedEvent(org.id, 'msg_1')).toEqual({
      credits: expect.any(String),
      input_tokens: '2600',
      output_tokens: '31',
      cache_read_tokens: '2000',
      cache_write_tokens: '500',
    });
    const event = await storedEvent(org.id, 'msg_1');
    expect(formatCredits(BigInt(event!.credits!))).toBe(outcome.capture.credits);
    // Tally prices the same usage sent as a plain event identically.
    const direct = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'direct',
            member: 'u1',
            feature: 'Chat',
            provider: 'anthropic',
            model: 'claude-sonnet-4-0',
            occurred_at: new Date().toISOString(),
            usage: outcome.usage,
          },
        ],
      },
    });
    expect(direct.body.results[0]).toMatchObject({ status: 'accepted', credits: outcome.capture.credits });
  });
});
