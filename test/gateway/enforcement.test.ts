/**
 * What the gateway refuses and cuts: a limit reached mid-stream ends the answer cleanly and bills
 * nothing past the limit; a client that goes away pays for what was streamed; a denied hold is a
 * 402 in the provider's format; upstream errors pass through; bad keys and bodies are refused; a
 * capture the database refuses for a moment is tried again.
 */
import { APIError as AnthropicError } from '@anthropic-ai/sdk';
import { APIError as OpenAIError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { estimateOutputTokens, estimateTokens } from '../../sdk/src/usage.ts';
import { tokenText } from '../support/fakeProviders.ts';
import {
  anthropicClient,
  balance,
  type GatewayFixture,
  gatewayOrg,
  lastEvent,
  openaiClient,
  pricedThroughEvents,
  startGateway,
} from './fixture.ts';

/** OpenAI's `{error: {...}}` or Anthropic's `{type: "error", error: {...}}`. */
type ProviderErrorBody = { type?: string; error: { message?: string; type: string; code?: string } };

let g: GatewayFixture;
const member = { 'tally-member': 'user_7', 'tally-feature': 'chat' };
const prompt = [{ role: 'user' as const, content: 'Write a long essay' }];

beforeAll(async () => {
  g = await startGateway({ TALLY_BODY_LIMIT_BYTES: '65536' });
});
afterEach(() => {
  g.fake.behave({
    chunks: 12,
    chunkDelayMs: 0,
    failWith: null,
    dropAfterEvents: null,
    inputTokens: 1200,
    cacheReadTokens: 800,
    cacheWriteTokens: 100,
    usageOnEveryChunk: false,
    stallAtEnd: false,
  });
});
afterAll(async () => {
  await g.close();
});

/** An org whose monthly limit is `limit` EUR. */
async function limitedOrg(limit: string) {
  const created = await gatewayOrg(g);
  const set = await g.tally.call('PUT', `/v1/orgs/${created.org.id}/limits`, {
    body: { alert_threshold: limit, allowed_limit: limit },
  });
  expect(set.status).toBe(200);
  return created;
}

async function monthCost(orgId: string): Promise<number> {
  const summary = await g.tally.call('GET', `/v1/orgs/${orgId}/usage/summary?range=mtd`);
  return Number(summary.body.cost);
}

/** Each provider's calls, credits and failed calls in the last day, as the usage breakdown counts them. */
async function failuresByProvider(orgId: string) {
  const page = await g.tally.call('GET', `/v1/orgs/${orgId}/usage/breakdown?range=1d&by=provider`);
  expect(page.status).toBe(200);
  return Object.fromEntries(
    page.body.data.map(
      (r: { key: string; calls: number; credits: string; failed_calls: number; top_error: string }) => [
        r.key,
        { calls: r.calls, credits: r.credits, failed_calls: r.failed_calls, top_error: r.top_error },
      ],
    ),
  );
}

describe('a limit reached mid-stream', () => {
  it('cuts an OpenAI stream with finish_reason length and bills nothing past the limit', async () => {
    // gpt-4o in EUR: the cached prompt costs about 0.003, each output token about 0.0000135.
    const { org, key } = await limitedOrg('0.01');
    // A provider paced at 1000 tokens a second, so the cut finds it still answering.
    g.fake.behave({ chunks: 5000, chunkDelayMs: 1 });
    const abortedBefore = g.fake.aborted();
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: prompt,
      stream: true,
    });
    let tokens = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) tokens++;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('length');
    expect(tokens).toBeGreaterThan(50);
    expect(tokens).toBeLessThan(1000);
    await expect.poll(() => g.fake.aborted()).toBe(abortedBefore + 1);
    // Tally stopped the answer when the next step would not fit: at most the limit is spent, and
    // less than a step's worth of it is left.
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
    expect(await monthCost(org.id)).toBeGreaterThan(0.009);
    const after = await balance(g, org.id);
    expect(after.held_credits).toBe('0');
  });

  it('keeps room for a prompt OpenAI reports only at the end, so the cut leaves nothing unbilled', async () => {
    // 10 000 prompt tokens (3.45 credits) under a 5-credit limit: output may use only the rest.
    const { org, key } = await limitedOrg('0.05');
    g.fake.behave({
      chunks: 8000,
      chunkDelayMs: 0,
      inputTokens: 10_000,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'abcd'.repeat(10_000) }],
      stream: true,
    });
    let finish: string | null = null;
    for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe('length');
    await expect.poll(async () => (await balance(g, org.id)).held_credits).toBe('0');
    const [call] = await g.tally.db.query<{ result: { unbilled_credits: string } }>(
      'SELECT result FROM authorizations WHERE org_id = $1',
      [org.id],
    );
    // Before, the prompt (3.45 credits) was left unbilled: 3.65 credits in all. What is left now is
    // output the stream counts low while it runs, and what streamed while Tally's answers were on
    // their way (0.26 credits here on PGlite, up to 0.72 on the server).
    expect(Number(call!.result.unbilled_credits)).toBeLessThan(1.5);
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.05);
    expect(await monthCost(org.id)).toBeGreaterThan(0.049);
  });

  it('cuts a stream whose provider reports its running usage on every chunk', async () => {
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave({ chunks: 8000, chunkDelayMs: 0, usageOnEveryChunk: true });
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: prompt,
      stream: true,
      stream_options: { include_usage: true },
    });
    let tokens = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) tokens++;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('length');
    expect(tokens).toBeLessThan(1000);
    await expect.poll(async () => (await balance(g, org.id)).held_credits).toBe('0');
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
    expect(await monthCost(org.id)).toBeGreaterThan(0.009);
  });

  it('ends a cut Responses API stream with response.incomplete', async () => {
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave({ chunks: 5000, chunkDelayMs: 1 });
    const stream = await openaiClient(g, key, member).responses.create({
      model: 'gpt-4o',
      input: 'Write a long essay',
      stream: true,
    });
    const types: string[] = [];
    let last: unknown = null;
    for await (const event of stream) {
      types.push(event.type);
      last = event;
    }
    expect(types.length).toBeLessThan(1000);
    expect(last).toMatchObject({
      type: 'response.incomplete',
      response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } },
    });
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
  });

  it('cuts an Anthropic stream with stop_reason max_tokens and a complete message', async () => {
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave({ chunks: 5000 });
    const stream = anthropicClient(g, key, member).messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 8000,
      messages: prompt,
    });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    const text = message.content[0]?.type === 'text' ? message.content[0].text : '';
    expect(text.length).toBeGreaterThan(0);
    expect(text.length).toBeLessThan(tokenText(0).length * 5000);
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
    expect((await balance(g, org.id)).held_credits).toBe('0');
  });
});

describe('a hold that covers less than the request may produce', () => {
  // The provider counts the prompt as the gateway estimates it (a few tokens), so the hold's
  // estimate of the input is right and only the output decides.
  const promptCounts = { chunks: 5000, inputTokens: 4, cacheReadTokens: 0, cacheWriteTokens: 0 };

  /** Every served token is billed: the call costs what ingesting its exact usage costs. */
  async function expectFullyBilled(orgId: string, provider: string, model: string) {
    const event = await lastEvent(g, orgId);
    const reference = await pricedThroughEvents(g, {
      provider,
      model,
      usage: {
        input_tokens: event.tokens.input,
        output_tokens: event.tokens.output,
        cache_read_tokens: event.tokens.cache_read,
        cache_write_tokens: event.tokens.cache_write,
      },
    });
    expect(event.credits).toBe(reference.credits);
    return event;
  }

  it('caps a whole OpenAI answer at the output the hold pays for, and bills all of it', async () => {
    // 0.01 EUR covers the prompt and a few hundred gpt-4o output tokens, not the default 4 096.
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave(promptCounts);
    const before = g.fake.requests.length;
    const answer = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: prompt,
    });
    const cap = g.fake.requests[before]!.body.max_completion_tokens as number;
    expect(cap).toBeGreaterThan(50);
    expect(cap).toBeLessThan(4096);
    expect(answer.choices[0]?.finish_reason).toBe('length');
    expect(answer.usage?.completion_tokens).toBe(cap);
    const event = await expectFullyBilled(org.id, 'openai', 'gpt-4o');
    expect(event.tokens.output).toBe(cap);
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
    expect((await balance(g, org.id)).held_credits).toBe('0');
  });

  it("lowers the field the client set (max_tokens), and Anthropic's max_tokens", async () => {
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave(promptCounts);
    let before = g.fake.requests.length;
    await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: prompt,
      max_tokens: 4000,
    });
    const sent = g.fake.requests[before]!.body;
    expect(sent.max_completion_tokens).toBeUndefined();
    expect(sent.max_tokens as number).toBeLessThan(4000);
    await expectFullyBilled(org.id, 'openai', 'gpt-4o');

    const other = await limitedOrg('0.01');
    before = g.fake.requests.length;
    const message = await anthropicClient(g, other.key, member).messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 8000,
      messages: prompt,
    });
    const cap = g.fake.requests[before]!.body.max_tokens as number;
    expect(cap).toBeGreaterThan(0);
    expect(cap).toBeLessThan(8000);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(cap);
    await expectFullyBilled(other.org.id, 'anthropic', 'claude-sonnet-4-5');
  });

  it('caps each of n answers at an equal share of the output the hold pays for', async () => {
    const { org, key } = await limitedOrg('0.01');
    g.fake.behave(promptCounts);
    const before = g.fake.requests.length;
    const answer = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o',
      messages: prompt,
      n: 8,
      max_completion_tokens: 4000,
    });
    // One answer alone would be capped at some 700 tokens: eight share that.
    const cap = g.fake.requests[before]!.body.max_completion_tokens as number;
    expect(cap).toBeGreaterThan(50);
    expect(cap).toBeLessThan(100);
    expect(answer.choices).toHaveLength(8);
    expect(answer.usage?.completion_tokens).toBe(8 * cap);
    await expectFullyBilled(org.id, 'openai', 'gpt-4o');
    expect(await monthCost(org.id)).toBeLessThanOrEqual(0.01);
  });

  it('refuses n answers when the room left does not pay for one token of each', async () => {
    const { org, key } = await limitedOrg('0.001');
    g.fake.behave(promptCounts);
    const requests = g.fake.requests.length;
    const refused = await openaiClient(g, key, member)
      .chat.completions.create({ model: 'gpt-4o', messages: prompt, n: 128 })
      .catch((e: unknown) => e as OpenAIError);
    expect(refused).toMatchObject({ status: 402, code: 'insufficient_room' });
    expect(g.fake.requests.length).toBe(requests);
    expect((await balance(g, org.id)).held_credits).toBe('0');
  });

  it('lowers an Anthropic thinking budget with max_tokens, keeping its share, and refuses when none fits', async () => {
    const thinking = {
      model: 'claude-haiku-4-5',
      max_tokens: 16_000,
      thinking: { type: 'enabled' as const, budget_tokens: 10_000 },
      messages: prompt,
    };
    const { org, key } = await limitedOrg('0.04');
    g.fake.behave(promptCounts);
    const before = g.fake.requests.length;
    const message = await anthropicClient(g, key, member).messages.create(thinking);
    const sent = g.fake.requests[before]!.body as typeof thinking;
    expect(sent.max_tokens).toBeLessThan(16_000);
    expect(sent.max_tokens).toBeGreaterThan(1024 * 2);
    // 10 000 of 16 000: the budget keeps 5/8 of the lowered max_tokens, the answer the rest.
    expect(sent.thinking.budget_tokens).toBe(Math.floor((10_000 * sent.max_tokens) / 16_000));
    expect(message.usage.output_tokens).toBeLessThanOrEqual(sent.max_tokens);
    await expectFullyBilled(org.id, 'anthropic', 'claude-haiku-4-5');

    // About 500 tokens: max_tokens cannot keep the smallest budget (1 024) below it.
    const poorer = await limitedOrg('0.0035');
    const requests = g.fake.requests.length;
    const refused = await anthropicClient(g, poorer.key, member)
      .messages.create(thinking)
      .catch((e: unknown) => e as AnthropicError);
    expect(refused).toMatchObject({
      status: 402,
      error: { error: { type: 'billing_error', message: expect.stringContaining('insufficient_room') } },
    });
    expect(g.fake.requests.length).toBe(requests);
    expect((await balance(g, poorer.org.id)).held_credits).toBe('0');
  });

  it('leaves a request the hold covers as the client sent it', async () => {
    const { key } = await limitedOrg('5');
    const before = g.fake.requests.length;
    await openaiClient(g, key, member).chat.completions.create({ model: 'gpt-4o', messages: prompt });
    expect(g.fake.requests[before]!.body.max_completion_tokens).toBeUndefined();
  });

  it('refuses with 402 in the provider format when the room left does not cover the prompt', async () => {
    const { org, key } = await limitedOrg('0.01');
    const requests = g.fake.requests.length;
    // About 10 000 input tokens of gpt-4o: some 0.023 EUR, more than the 0.01 left.
    const long = [{ role: 'user' as const, content: 'word '.repeat(8000) }];
    const refused = await openaiClient(g, key, member)
      .chat.completions.create({ model: 'gpt-4o', messages: long })
      .catch((e: unknown) => e as OpenAIError);
    expect(refused).toBeInstanceOf(OpenAIError);
    expect(refused).toMatchObject({ status: 402, code: 'insufficient_room', type: 'insufficient_quota' });
    expect(g.fake.requests.length).toBe(requests);
    const after = await balance(g, org.id);
    expect(after.held_credits).toBe('0');
  });
});

describe('holds', () => {
  it('cover the output of every answer a chat completion asks for (n), streamed too', async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ chunks: 200, chunkDelayMs: 5 });
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
      n: 3,
      max_completion_tokens: 500,
      stream: true,
    });
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    const held = (await balance(g, org.id)).held_credits;
    const threeAnswers = await pricedThroughEvents(g, {
      provider: 'openai',
      model: 'gpt-4o-mini',
      usage: { input_tokens: estimateTokens(`user ${prompt[0]!.content}`), output_tokens: 3 * 500 },
    });
    expect(held).toBe(threeAnswers.credits);
    let text = '';
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      text += next.value.choices[0]?.index === 2 ? (next.value.choices[0].delta.content ?? '') : '';
    }
    expect(text).toBe(Array.from({ length: 200 }, (_, i) => tokenText(i)).join(''));
    expect((await lastEvent(g, org.id)).tokens.output).toBe(3 * 200);
  });
});

/** The database refuses the next `times` captures of the org's calls, as in a blip. */
async function refuseCaptures(orgId: string, times: number) {
  await g.tally.db.exec(`
    CREATE SEQUENCE IF NOT EXISTS refused_captures;
    ALTER SEQUENCE refused_captures RESTART;
    CREATE OR REPLACE FUNCTION refuse_capture() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('refused_captures') <= ${times} THEN
        RAISE EXCEPTION 'the database refused the capture for a moment';
      END IF;
      RETURN NEW;
    END $$;
    DROP TRIGGER IF EXISTS refuse_capture ON authorizations;
    CREATE TRIGGER refuse_capture BEFORE UPDATE ON authorizations FOR EACH ROW
      WHEN (NEW.status = 'captured' AND NEW.org_id = '${orgId}') EXECUTE FUNCTION refuse_capture();`);
}

describe('a capture the database refuses for a moment', () => {
  it('is tried again, so the call is billed, streamed or not', async () => {
    const { org, key } = await gatewayOrg(g);
    await refuseCaptures(org.id, 2);
    await openaiClient(g, key, member).chat.completions.create({ model: 'gpt-4o-mini', messages: prompt });
    expect((await balance(g, org.id)).held_credits).toBe('0');
    expect((await lastEvent(g, org.id)).tokens).toMatchObject({ input: 1200, output: 12 });

    await refuseCaptures(org.id, 3);
    const message = await anthropicClient(g, key, member)
      .messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, messages: prompt })
      .finalMessage();
    expect(message.usage.output_tokens).toBe(12);
    expect(await lastEvent(g, org.id)).toMatchObject({ provider: 'anthropic', tokens: { output: 12 } });
  });
});

describe('a client that disconnects', () => {
  it('pays for the streamed part, estimated from the text, and the rest of the hold is released', async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ chunks: 2000, chunkDelayMs: 2 });
    const abortedBefore = g.fake.aborted();
    const controller = new AbortController();
    const stream = await openaiClient(g, key, member).chat.completions.create(
      { model: 'gpt-4o-mini', messages: prompt, stream: true },
      { signal: controller.signal },
    );
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received++;
      if (received === 40) break;
    }
    controller.abort();
    await expect.poll(() => g.fake.aborted()).toBe(abortedBefore + 1);
    await expect.poll(async () => (await balance(g, org.id)).held_credits).toBe('0');
    const event = await lastEvent(g, org.id);
    // OpenAI reports no usage before the end: input is estimated from the request's text (roles
    // and contents), output is the SDK's low estimate of the streamed text.
    expect(event.tokens.input).toBe(estimateTokens(`user ${prompt[0]!.content}`));
    const streamed = (n: number) =>
      estimateOutputTokens(
        n,
        Array.from({ length: n }, (_, i) => tokenText(i).length).reduce((a, b) => a + b, 0),
      );
    expect(event.tokens.output).toBeGreaterThanOrEqual(streamed(40));
    expect(event.tokens.output).toBeLessThan(streamed(200));
    expect(Number(event.credits)).toBeGreaterThan(0);
  });

  it('bills Anthropic input exactly from message_start when the client leaves early', async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ chunks: 2000, chunkDelayMs: 2 });
    const controller = new AbortController();
    const stream = await anthropicClient(g, key, member).messages.create(
      { model: 'claude-haiku-4-5', max_tokens: 4000, messages: prompt, stream: true },
      { signal: controller.signal },
    );
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && ++deltas === 30) break;
    }
    controller.abort();
    await expect.poll(async () => (await balance(g, org.id)).held_credits).toBe('0');
    const event = await lastEvent(g, org.id);
    expect(event.tokens).toMatchObject({ input: 1200, cache_read: 800, cache_write: 100 });
    expect(event.tokens.output).toBeGreaterThanOrEqual(30);
  });
});

describe('a provider that fails mid-answer', () => {
  it("ends the client's stream with an error event in the provider format and bills what was streamed", async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ chunks: 100, chunkDelayMs: 2, dropAfterEvents: 31 });
    const stream = anthropicClient(g, key, member).messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 1000,
      messages: prompt,
    });
    const failure = await stream.finalMessage().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(AnthropicError);
    expect(String(failure)).toContain('The provider connection failed mid-answer');
    await expect.poll(async () => (await balance(g, org.id)).held_credits).toBe('0');
    // message_start, content_block_start and ping came first: 28 text events were streamed.
    const event = await lastEvent(g, org.id);
    expect(event.tokens).toMatchObject({ input: 1200, cache_read: 800, cache_write: 100, output: 28 });
    // Billed for what was streamed, and counted as a failed call.
    expect(await failuresByProvider(org.id)).toEqual({
      anthropic: { calls: 1, credits: event.credits, failed_calls: 1, top_error: 'upstream_interrupted' },
    });
  });
});

describe('a provider that keeps its connection open after the answer', () => {
  const answer = Array.from({ length: 12 }, (_, i) => tokenText(i)).join('');

  it("ends the OpenAI client's stream at [DONE], captured exactly, and lets go of the provider", async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ stallAtEnd: true });
    const abortedBefore = g.fake.aborted();
    const stream = await openaiClient(g, key, member).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(answer);
    // The capture came before the client's stream closed, not when the provider's connection did.
    expect((await balance(g, org.id)).held_credits).toBe('0');
    const event = await lastEvent(g, org.id);
    expect(event.tokens).toMatchObject({ input: 1200, cache_read: 800, output: 12 });
    await expect.poll(() => g.fake.aborted(), { timeout: 3_000 }).toBe(abortedBefore + 1);
  });

  it("ends the Anthropic client's stream at message_stop, captured exactly", async () => {
    const { org, key } = await gatewayOrg(g);
    g.fake.behave({ stallAtEnd: true });
    const message = await anthropicClient(g, key, member)
      .messages.stream({ model: 'claude-haiku-4-5', max_tokens: 1000, messages: prompt })
      .finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: answer }]);
    expect((await balance(g, org.id)).held_credits).toBe('0');
    const event = await lastEvent(g, org.id);
    expect(event.tokens).toMatchObject({ input: 1200, cache_read: 800, cache_write: 100, output: 12 });
  });
});

describe('refusals in the provider format', () => {
  it('answers a denied hold with 402 and the reason, for both clients', async () => {
    const { key } = await limitedOrg('0');
    const requests = g.fake.requests.length;
    const openai = await openaiClient(g, key, member)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: prompt })
      .catch((e: unknown) => e as OpenAIError);
    expect(openai).toBeInstanceOf(OpenAIError);
    expect(openai).toMatchObject({ status: 402, code: 'quota_exceeded', type: 'insufficient_quota' });
    const anthropic = await anthropicClient(g, key, member)
      .messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: prompt })
      .catch((e: unknown) => e as AnthropicError);
    expect(anthropic).toBeInstanceOf(AnthropicError);
    expect((anthropic as AnthropicError).status).toBe(402);
    expect((anthropic as AnthropicError).error).toMatchObject({
      type: 'error',
      error: { type: 'billing_error', message: expect.stringContaining('quota_exceeded') },
    });
    expect(g.fake.requests.length).toBe(requests);
  });

  it('passes upstream 4xx and 5xx through with their status and body, and holds nothing', async () => {
    const { org, key } = await gatewayOrg(g);
    const body = {
      error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit' },
    };
    for (const status of [429, 500]) {
      g.fake.behave({ failWith: { status, body } });
      const error = await openaiClient(g, key, member)
        .chat.completions.create({ model: 'gpt-4o-mini', messages: prompt, stream: true })
        .catch((e: unknown) => e as OpenAIError);
      expect(error).toMatchObject({ status, error: body.error });
    }
    const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
    g.fake.behave({ failWith: { status: 529, body: overloaded } });
    const anthropic = await anthropicClient(g, key, member)
      .messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: prompt })
      .catch((e: unknown) => e as AnthropicError);
    expect(anthropic).toMatchObject({ status: 529, error: overloaded });
    const after = await balance(g, org.id);
    expect(after.held_credits).toBe('0');
    expect(after.available_credits).toBe('500');
    // Each is recorded as a failed call with no usage, named by the provider's status.
    const failed = await failuresByProvider(org.id);
    expect(failed).toEqual({
      openai: { calls: 2, credits: '0', failed_calls: 2, top_error: 'upstream_429' },
      anthropic: { calls: 1, credits: '0', failed_calls: 1, top_error: 'upstream_529' },
    });
  });

  it('refuses bad keys with 401 in each format', async () => {
    const openai = await openaiClient(g, 'tally_sk_not_a_real_key', member)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: prompt })
      .catch((e: unknown) => e as OpenAIError);
    expect(openai).toMatchObject({ status: 401, error: { type: 'invalid_request_error' } });
    const anthropic = await anthropicClient(g, 'sk-ant-something', member)
      .messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: prompt })
      .catch((e: unknown) => e as AnthropicError);
    expect(anthropic).toMatchObject({ status: 401, error: { error: { type: 'authentication_error' } } });
  });

  it('answers malformed requests 400 in the provider format, never 5xx', async () => {
    const { key } = await gatewayOrg(g);
    const send = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${g.base}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          ...member,
          ...headers,
        },
        body,
      });
    const deep = `${'['.repeat(5000)}"x"${']'.repeat(5000)}`;
    const cases: [string, string, number][] = [
      ['/gateway/openai/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": [', 400],
      ['/gateway/openai/v1/chat/completions', '[]', 400],
      ['/gateway/openai/v1/chat/completions', '{"messages": []}', 400],
      [
        '/gateway/openai/v1/chat/completions',
        '{"model": "gpt-4o-mini", "messages": [], "max_tokens": -1}',
        400,
      ],
      ['/gateway/openai/v1/chat/completions', '{"model": "no-such-model", "messages": []}', 400],
      [
        '/gateway/anthropic/v1/messages',
        '{"model": "claude-haiku-4-5", "max_tokens": "many", "messages": []}',
        400,
      ],
      ['/gateway/anthropic/v1/messages', '\u0000\u0001', 400],
      ['/gateway/openai/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": [], "n": 0}', 400],
      ['/gateway/openai/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": [], "n": 129}', 400],
      ['/gateway/openai/v1/chat/completions', '{"model": "gpt-4o-mini", "messages": [], "n": 1.5}', 400],
      [
        '/gateway/openai/v1/chat/completions',
        `{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ${deep}}]}`,
        400,
      ],
      [
        '/gateway/anthropic/v1/messages',
        `{"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": ${deep}}]}`,
        400,
      ],
      ['/gateway/openai/v1/embeddings', '{"model": "text-embedding-3-small"}', 400],
      ['/gateway/openai/v1/embeddings', '{"model": "text-embedding-3-small", "input": [1.5]}', 400],
      ['/gateway/openai/v1/moderations', '{}', 404],
      ['/gateway/nope/v1/x', '{}', 404],
      // Names an object has of its own built in name no provider either.
      ['/gateway/toString/v1/chat/completions', '{}', 404],
      ['/gateway/constructor/v1/chat/completions', '{}', 404],
      ['/gateway/__proto__/v1/chat/completions', '{}', 404],
      ['/gateway/hasOwnProperty/v1/messages', '{}', 404],
    ];
    for (const [path, body, status] of cases) {
      const res = await send(path, body);
      expect({ path, body, status: res.status }).toEqual({ path, body, status });
      const answer = (await res.json()) as ProviderErrorBody;
      if (path.includes('anthropic'))
        expect(answer).toMatchObject({ type: 'error', error: { type: expect.any(String) } });
      else expect(answer).toMatchObject({ error: { message: expect.any(String), type: expect.any(String) } });
    }
    for (const name of ['toString', '__proto__', 'valueOf']) {
      const models = await fetch(`${g.base}/gateway/${name}/v1/models`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect({ name, status: models.status }).toEqual({ name, status: 404 });
    }
    const badChoices = await openaiClient(g, key, member)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: prompt, n: 129 })
      .catch((e: unknown) => e as OpenAIError);
    expect(badChoices).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      message: expect.stringContaining('n must be an integer from 1 to 128'),
    });
    const noMember = await send(
      '/gateway/openai/v1/chat/completions',
      '{"model":"gpt-4o-mini","messages":[]}',
      {
        'tally-member': '',
      },
    );
    expect(noMember.status).toBe(400);
    const longMember = await send(
      '/gateway/openai/v1/chat/completions',
      '{"model":"gpt-4o-mini","messages":[]}',
      {
        'tally-member': 'm'.repeat(201),
      },
    );
    expect(longMember.status).toBe(400);
    const huge = JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'x'.repeat(70_000) }],
    });
    const tooLarge = await send('/gateway/anthropic/v1/messages', huge);
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
    expect(((await noMember.json()) as ProviderErrorBody).error.code).toBe('member_required');
  });
});
