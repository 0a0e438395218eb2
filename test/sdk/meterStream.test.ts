/**
 * meterStream against a real Tally, wrapping the official openai and @anthropic-ai/sdk clients'
 * streams, which talk to a local server answering in each provider's wire format. Tally outages are
 * a fault-injecting proxy in front of it, or a closed port.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tally, TallyCaptureError, TallyError, TallyNetworkError, type Usage } from '../../sdk/src/index.ts';
import { decimalUnits, formatCredits } from '../../src/domain/money.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';
import {
  type Fault,
  type FaultyProxy,
  type Listening,
  type ModelServer,
  serveTally,
  startFaultyProxy,
  startModelServer,
} from './support.ts';

let t: TestTally;
let server: Listening;
const models: ModelServer[] = [];
const proxies: FaultyProxy[] = [];
beforeAll(async () => {
  t = await startTally();
  server = await serveTally(t);
});
afterAll(async () => {
  for (const model of models) await model.close();
  for (const proxy of proxies) await proxy.close();
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

  it("records the hold's surface, conversation, message and metadata on the stream's event", async () => {
    const { org, key } = await createOrgWithKey(t);
    const model = await modelServer(() =>
      openAIChunks(3, { prompt_tokens: 100, completion_tokens: 240, total_tokens: 340 }),
    );
    const openai = new OpenAI({ apiKey: 'sk-local', baseURL: `${model.url}/v1`, maxRetries: 0 });
    const tally = new Tally({ apiKey: key, baseUrl: server.url });
    const hold = await tally.authorize({
      member: 'u1',
      feature: 'Agent',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { input_tokens: 100, max_output_tokens: 1000 },
      surface: 'cli',
      conversation_id: 'conv-7',
      message_id: 'msg-7',
      metadata: { tool: 'web_search' },
    });
    expect(hold).toMatchObject({ approved: true, surface: 'cli', conversation_id: 'conv-7' });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Search the web' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const metered = tally.meterStream(stream, { provider: 'openai', authorization: hold });
    for await (const _ of metered) {
      // drained: captured when the stream ends
    }
    expect((await metered.outcome).usage).toEqual({ input_tokens: 100, output_tokens: 240 });
    const events = await t.db.query(
      'SELECT surface, conversation_id, message_id, metadata FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(events).toEqual([
      {
        surface: 'cli',
        conversation_id: 'conv-7',
        message_id: 'msg-7',
        metadata: { tool: 'web_search', authorization_id: hold.id },
      },
    ]);
  });
});

const fast = { maxRetries: 1, baseDelayMs: 5, maxDelayMs: 50 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An org with a gpt-4o hold placed directly, an OpenAI stream of `chunks` text chunks (80 estimated
 * output tokens each, exactly what the last chunk reports), and a client that meters through a
 * fault-injecting proxy (or `baseUrl`, a Tally that cannot be reached).
 */
async function meteredSetup(chunks: number, plan: Fault[] = [], baseUrl?: string) {
  const { org, key } = await createOrgWithKey(t);
  const proxy = await startFaultyProxy(server.url, plan);
  proxies.push(proxy);
  const direct = new Tally({ apiKey: key, baseUrl: server.url });
  const hold = await direct.authorize({
    member: 'u1',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    estimate: { input_tokens: 1000, max_output_tokens: 10_000 },
  });
  const model = await modelServer(() =>
    openAIChunks(chunks, {
      prompt_tokens: 1000,
      completion_tokens: chunks * 80,
      total_tokens: 1000 + chunks * 80,
    }),
  );
  const openai = new OpenAI({ apiKey: 'sk-local', baseURL: `${model.url}/v1`, maxRetries: 0 });
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Write a story' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const tally = new Tally({ apiKey: key, baseUrl: baseUrl ?? proxy.url, retry: fast });
  const errors: Error[] = [];
  const options = {
    provider: 'openai' as const,
    authorization: hold,
    incrementEveryTokens: 100,
    inputTokens: 1000,
    onError: (error: Error) => errors.push(error),
  };
  return { org, key, proxy, direct, hold, model, stream, tally, errors, options };
}

/** The credits Tally bills for this usage sent once, as a plain event. */
async function creditsOnce(key: string, usage: Usage): Promise<string> {
  const answer = await t.call('POST', '/v1/events', {
    key,
    body: {
      events: [
        {
          id: `once_${crypto.randomUUID()}`,
          member: 'u1',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: new Date().toISOString(),
          usage,
        },
      ],
    },
  });
  return answer.body.results[0].credits;
}

/** The usage Tally took from the hold's increments. */
async function streamedUsage(orgId: string, id: string): Promise<Usage> {
  const [row] = await t.db.query<{ usage: Usage }>(
    'SELECT usage FROM authorizations WHERE org_id = $1 AND id = $2',
    [orgId, id],
  );
  return row!.usage;
}

/** Chunks enough that the model server (1 ms a chunk) cannot finish before a client that stops early hangs up. */
const LONG_ANSWER = 5_000;

const incrementPosts = (proxy: FaultyProxy) => proxy.seen.filter((r) => r.path.endsWith('/increments'));
const capturePosts = (proxy: FaultyProxy) => proxy.seen.filter((r) => r.path.endsWith('/capture'));

describe('meterStream while Tally is unavailable', () => {
  it('streams every chunk through an outage, reports the pending usage once Tally is back, and bills the total once', async () => {
    const s = await meteredSetup(60);
    const metered = s.tally.meterStream(s.stream, s.options);
    let text = '';
    let chunks = 0;
    let resent = false;
    for await (const chunk of metered) {
      const content = chunk.choices[0]?.delta.content;
      if (!content) continue;
      text += content;
      chunks++;
      // Tally answers 503 from the increment after chunk 10 (8 chunks were reported: 640 tokens)
      // until chunk 30 has streamed.
      if (chunks === 10) s.proxy.outage = { status: 503 };
      if (chunks === 30) s.proxy.outage = undefined;
      // Then the reader slows down until the unanswered increment got through in the background,
      // so the stream (buffered while increments were awaited) does not end before it does.
      if (chunks > 30 && !resent) {
        resent = ((await streamedUsage(s.org.id, s.hold.id!)).output_tokens ?? 0) > 640;
        if (!resent) await sleep(50);
      }
    }
    const outcome = await metered.outcome;

    expect(text).toBe(WORDS.repeat(60));
    expect(resent).toBe(true);
    expect(s.errors.length).toBeGreaterThanOrEqual(1);
    for (const error of s.errors) expect(error).toMatchObject({ name: 'TallyError', status: 503 });
    expect(outcome.stopped).toBe(false);
    expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 4800 });
    // Increments carry running totals: once Tally was back, one carried what streamed meanwhile.
    expect(incrementPosts(s.proxy).some((r) => r.body.usage_total.output_tokens > 800)).toBe(true);
    const streamed = await streamedUsage(s.org.id, s.hold.id!);
    expect(streamed.output_tokens).toBeGreaterThan(800);
    expect(streamed.output_tokens).toBeLessThanOrEqual(4800);
    // The capture bills the exact total once: what the same usage costs as one plain event.
    expect(outcome.capture).toMatchObject({ status: 'captured', late: false });
    const event = await storedEvent(s.org.id, s.hold.id!);
    expect(formatCredits(BigInt(event!.credits!))).toBe(outcome.capture.credits);
    const limits = await t.call('GET', `/v1/orgs/${s.org.id}/limits`);
    expect(limits.body).toMatchObject({ spent: outcome.capture.cost, held: '0' });
    expect(outcome.capture.credits).toBe(await creditsOnce(s.key, outcome.usage));
  });

  it('waits answerWaitMs for a slow Tally, not its whole answer, and still bills the total once', async () => {
    // The increment after chunk 4 is answered only 1.5 s later.
    const s = await meteredSetup(6, ['pass', { delayMs: 1_500 }]);
    const metered = s.tally.meterStream(s.stream, { ...s.options, answerWaitMs: 200 });
    const started = Date.now();
    let chunks = 0;
    for await (const chunk of metered) if (chunk.choices[0]?.delta.content) chunks++;
    const streamedIn = Date.now() - started;
    const outcome = await metered.outcome;

    expect(chunks).toBe(6);
    expect(streamedIn).toBeLessThan(1_200);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatchObject({ name: 'TallyNetworkError' });
    expect(s.errors[0]!.message).toContain('200 ms');
    expect(outcome.stopped).toBe(false);
    expect(outcome.capture.credits).toBe(await creditsOnce(s.key, outcome.usage));
  });

  it("ends the stream cleanly with onUnavailable: 'stop', and captures what streamed", async () => {
    // The increment after chunk 2 gets through; the one after chunk 4 gets 503 twice (both tries).
    // A long answer, so the model is still writing when the client hangs up, however slow the machine.
    const s = await meteredSetup(LONG_ANSWER, ['pass', { status: 503 }, { status: 503 }]);
    const metered = s.tally.meterStream(s.stream, { ...s.options, onUnavailable: 'stop' });
    let chunks = 0;
    for await (const chunk of metered) if (chunk.choices[0]?.delta.content) chunks++;
    const outcome = await metered.outcome;

    expect(chunks).toBe(4);
    await s.model.clientHungUp;
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatchObject({ name: 'TallyError', status: 503 });
    expect(outcome.stopped).toBe(true);
    expect(outcome.increments.map((i) => i.action)).toEqual(['continue']);
    expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 320 });
    expect(outcome.capture.credits).toBe(await creditsOnce(s.key, outcome.usage));
  });

  it('ends the stream with the error when Tally refuses an increment (409), keeping the usage', async () => {
    const s = await meteredSetup(LONG_ANSWER);
    const metered = s.tally.meterStream(s.stream, s.options);
    let chunks = 0;
    const thrown = await (async () => {
      for await (const chunk of metered) {
        if (!chunk.choices[0]?.delta.content) continue;
        chunks++;
        if (chunks === 4) await s.direct.void(s.hold.id!);
      }
    })().catch((error: unknown) => error);

    expect(thrown).toBeInstanceOf(TallyError);
    expect(thrown).toMatchObject({ status: 409, code: 'authorization_not_active' });
    expect(chunks).toBe(4);
    await s.model.clientHungUp;
    const failure = await metered.outcome.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TallyCaptureError);
    expect((failure as TallyCaptureError).cause).toMatchObject({
      status: 409,
      code: 'authorization_not_active',
    });
    expect((failure as TallyCaptureError).request).toEqual({
      usage: { input_tokens: 1000, output_tokens: 320 },
    });
    // Only the capture went to onError: the refused increment went to the consumer.
    expect(s.errors).toEqual([failure]);
  });

  it('retries the capture in the background until Tally is back', async () => {
    const s = await meteredSetup(10);
    const metered = s.tally.meterStream(s.stream, s.options);
    let chunks = 0;
    for await (const chunk of metered) {
      if (chunk.choices[0]?.delta.content) chunks++;
      // Every increment went through; Tally is down from the end of the answer on.
      if (chunk.choices[0]?.finish_reason) s.proxy.outage = { status: 503 };
    }
    // The consumer's stream is over while the capture still fails.
    expect(chunks).toBe(10);
    await sleep(400);
    const failedCaptures = capturePosts(s.proxy).length;
    expect(failedCaptures).toBeGreaterThanOrEqual(3);
    s.proxy.outage = undefined;
    const outcome = await metered.outcome;

    expect(capturePosts(s.proxy).length).toBeGreaterThan(failedCaptures);
    expect(s.errors).toEqual([]);
    expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 800 });
    expect(outcome.capture).toMatchObject({ status: 'captured', late: false });
    expect(outcome.capture.credits).toBe(await creditsOnce(s.key, outcome.usage));
  });

  it('bills an increment whose answer was lost once: the next report carries totals', async () => {
    // The increment after chunk 4 reaches Tally, which applies it, but its answer is lost (the
    // connection drops), and the client's retry gets a 503.
    const s = await meteredSetup(6, ['pass', 'drop', { status: 503 }]);
    const metered = s.tally.meterStream(s.stream, s.options);
    let text = '';
    for await (const chunk of metered) text += chunk.choices[0]?.delta.content ?? '';
    const outcome = await metered.outcome;

    expect(text).toBe(WORDS.repeat(6));
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatchObject({ name: 'TallyError', status: 503 });
    // The lost report (320) was tried twice under its key; the next one, after chunk 6, carries
    // the totals (480), and Tally bills only what passes the 320 it applied.
    const posts = incrementPosts(s.proxy);
    expect(posts.map((r) => r.body.usage_total.output_tokens)).toEqual([160, 320, 320, 480]);
    const keys = posts.map((r) => r.idempotencyKey);
    expect(keys[2]).toBe(keys[1]);
    expect(new Set(keys).size).toBe(3);
    expect(outcome.increments).toHaveLength(2);
    expect(await streamedUsage(s.org.id, s.hold.id!)).toEqual({ output_tokens: 480 });
    expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 480 });
    const limits = await t.call('GET', `/v1/orgs/${s.org.id}/limits`);
    expect(limits.body).toMatchObject({ spent: outcome.capture.cost, held: '0' });
    expect(outcome.capture.credits).toBe(await creditsOnce(s.key, outcome.usage));
  });

  it('sends an increment again when Tally says an earlier try of it is still running', async () => {
    // What Tally answers a resend (after a timeout) while the first try is still at work.
    const running = { status: 409, code: 'idempotency_key_in_progress', headers: { 'retry-after': '0' } };
    const s = await meteredSetup(6, ['pass', running]);
    const metered = s.tally.meterStream(s.stream, s.options);
    let text = '';
    for await (const chunk of metered) text += chunk.choices[0]?.delta.content ?? '';
    const outcome = await metered.outcome;

    expect(text).toBe(WORDS.repeat(6));
    expect(s.errors).toEqual([]);
    const keys = incrementPosts(s.proxy).map((r) => r.idempotencyKey);
    expect(keys).toHaveLength(4);
    expect(keys[2]).toBe(keys[1]);
    expect(outcome.increments).toHaveLength(3);
    expect(await streamedUsage(s.org.id, s.hold.id!)).toEqual({ output_tokens: 480 });
  });

  it('keeps the usage on the error when the capture finally fails, to be sent again later', async () => {
    const closed = await startFaultyProxy(server.url);
    await closed.close();
    const s = await meteredSetup(6, [], closed.url);
    const metered = s.tally.meterStream(s.stream, { ...s.options, captureRetryMs: 300 });
    let text = '';
    for await (const chunk of metered) text += chunk.choices[0]?.delta.content ?? '';
    const streamEnded = Date.now();
    const failure = await metered.outcome.catch((error: unknown) => error);

    expect(text).toBe(WORDS.repeat(6));
    expect(Date.now() - streamEnded).toBeGreaterThanOrEqual(200);
    expect(failure).toBeInstanceOf(TallyCaptureError);
    const { authorizationId, request, cause } = failure as TallyCaptureError;
    expect(cause).toBeInstanceOf(TallyNetworkError);
    expect(request).toEqual({ usage: { input_tokens: 1000, output_tokens: 480 } });
    expect(s.errors.at(-1)).toBe(failure);
    for (const error of s.errors.slice(0, -1)) expect(error).toBeInstanceOf(TallyNetworkError);

    const captured = await s.direct.capture(authorizationId, request);
    expect(captured).toMatchObject({ status: 'captured', late: false });
    expect(captured.credits).toBe(await creditsOnce(s.key, request.usage));
  });
});
