/**
 * How a metered stream ends, against a real Tally (behind a fault-injecting proxy) and the openai
 * client's streams from a local server: a hung increment does not hold up the capture, a stream
 * closed before its first read is still captured and closed, and increments follow a provider that
 * reports its running usage on every chunk.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Tally, TallyNetworkError } from '../../sdk/src/index.ts';
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
const closing: Listening[] = [];
beforeAll(async () => {
  t = await startTally();
  server = await serveTally(t);
});
afterAll(async () => {
  for (const listening of closing) await listening.close();
  await server.close();
  await t.close();
});

// 400 characters a chunk: 80 output tokens each by the SDK's estimate (5 characters a token).
const WORDS = 'abcd'.repeat(100);
const BASE = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o' };
const textChunk = (usage?: Record<string, number>) => ({
  ...BASE,
  choices: [{ index: 0, delta: { content: WORDS }, finish_reason: null }],
  ...(usage ? { usage } : {}),
});
/** An answer of `count` text chunks, then its usage alone in a last chunk (`include_usage`). */
const answer = (count: number, completionTokens: number) => [
  ...Array.from({ length: count }, () => textChunk()),
  { ...BASE, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
  { ...BASE, choices: [], usage: { prompt_tokens: 1000, completion_tokens: completionTokens } },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** `promise`'s value, or `'pending'` if it has not settled within `ms`. */
const within = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, sleep(ms).then(() => 'pending' as const)]);

/** An org, a gpt-4o hold, an OpenAI stream of `chunks`, and a client metering through a proxy. */
async function setup(chunks: unknown[], plan: Fault[] = [], timeoutMs?: number) {
  const { org, key } = await createOrgWithKey(t);
  const proxy: FaultyProxy = await startFaultyProxy(server.url, plan);
  const model: ModelServer = await startModelServer(() => chunks);
  closing.push(proxy, model);
  const hold = await new Tally({ apiKey: key, baseUrl: server.url }).authorize({
    member: 'u1',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    estimate: { input_tokens: 1000, max_output_tokens: 10_000 },
  });
  const openai = new OpenAI({ apiKey: 'sk-local', baseURL: `${model.url}/v1`, maxRetries: 0 });
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Write a story' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const tally = new Tally({
    apiKey: key,
    baseUrl: proxy.url,
    retry: { maxRetries: 1, baseDelayMs: 5 },
    timeoutMs,
  });
  const errors: Error[] = [];
  const options = {
    provider: 'openai' as const,
    authorization: hold,
    incrementEveryTokens: 100,
    inputTokens: 1000,
    onError: (error: Error) => errors.push(error),
  };
  const posts = (path: string) => proxy.seen.filter((r) => r.path.endsWith(path));
  return { org, model, stream, tally, errors, options, posts };
}

it('aborts an increment Tally has not answered once the stream is over, and captures at once', async () => {
  const HUNG_MS = 3_000;
  // The increment after chunk 2 hangs for 3 s (its attempt would time out after 1 s and be retried);
  // the capture is answered.
  const s = await setup(answer(3, 240), [{ delayMs: HUNG_MS }], 1_000);
  const metered = s.tally.meterStream(s.stream, { ...s.options, answerWaitMs: 200 });
  const started = Date.now();
  let chunks = 0;
  for await (const chunk of metered) if (chunk.choices[0]?.delta.content) chunks++;
  const streamEnded = Date.now();
  const outcome = await metered.outcome;

  expect(chunks).toBe(3);
  // The capture waited answerWaitMs for the increment, not its 3 s.
  expect(Date.now() - streamEnded).toBeLessThan(1_500);
  expect(outcome.capture).toMatchObject({ status: 'captured', late: false });
  expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 240 });
  expect(outcome.increments).toEqual([]);
  await sleep(HUNG_MS - (Date.now() - started) + 300);
  // The abandoned increment was neither retried nor reported; only its lateness was.
  expect(s.posts('/increments')).toHaveLength(1);
  expect(s.errors).toHaveLength(1);
  expect(s.errors[0]).toBeInstanceOf(TallyNetworkError);
  expect(s.errors[0]!.message).toContain('200 ms');
  // Once the hung increment reached Tally, after the capture, it billed nothing more.
  const limits = await t.call('GET', `/v1/orgs/${s.org.id}/limits`);
  expect(limits.body).toMatchObject({ spent: outcome.capture.cost, held: '0' });
});

for (const close of ['return', 'throw', 'ReadableStream cancel'] as const) {
  it(`closes the provider's stream and captures when the consumer closes it before reading (${close})`, async () => {
    const s = await setup(answer(2_000, 160_000));
    const metered = s.tally.meterStream(s.stream, s.options);
    const failure = new Error('the host gave up');
    if (close === 'ReadableStream cancel') await ReadableStream.from(metered).cancel();
    else if (close === 'throw') {
      await expect(metered[Symbol.asyncIterator]().throw!(failure)).rejects.toBe(failure);
    } else {
      expect(await metered[Symbol.asyncIterator]().return!()).toEqual({ done: true, value: undefined });
    }
    const outcome = await within(metered.outcome, 5_000);

    expect(await within(s.model.clientHungUp, 5_000)).toBeUndefined();
    expect(s.model.sent()).toBeLessThan(2_000);
    // Nothing streamed: the input the hold was placed with is captured and the rest released.
    expect(outcome).toMatchObject({
      stopped: false,
      usage: { input_tokens: 1000 },
      capture: { status: 'captured' },
      increments: [],
    });
    const limits = await t.call('GET', `/v1/orgs/${s.org.id}/limits`);
    expect(limits.body.held).toBe('0');
    // The metered stream is over for a later read too.
    expect(await metered[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
  });
}

it('reports increments, and so stops, when the provider sends its running usage on every chunk', async () => {
  // vLLM's continuous usage stats: every chunk carries the exact totals so far, 100 output tokens
  // a chunk. Past its hold's 10 000 output tokens (chunk 100) the call is over the org's limit of
  // EUR 0.10 (10 credits), so Tally says stop.
  const chunks = Array.from({ length: 5_000 }, (_, n) =>
    textChunk({ prompt_tokens: 1000, completion_tokens: (n + 1) * 100 }),
  );
  const s = await setup(chunks);
  await t.call('PUT', `/v1/orgs/${s.org.id}/limits`, {
    body: { alert_threshold: '0.05', allowed_limit: '0.1' },
  });
  // Each answer is waited for, however slow the machine, so the reports keep their schedule.
  const metered = s.tally.meterStream(s.stream, {
    ...s.options,
    incrementEveryTokens: 500,
    answerWaitMs: 30_000,
  });
  let received = 0;
  for await (const chunk of metered) if (chunk.choices[0]?.delta.content) received++;
  const outcome = await metered.outcome;

  expect(outcome.stopped).toBe(true);
  expect(outcome.increments.at(-1)!.action).toBe('stop');
  expect(received).toBe(100);
  await s.model.clientHungUp;
  // Every 500 tokens by the provider's own counts (the estimate says 80 a chunk).
  expect(s.posts('/increments').map((r) => r.body.usage_total)).toEqual(
    Array.from({ length: 20 }, (_, i) => ({ input_tokens: 1000, output_tokens: (i + 1) * 500 })),
  );
  expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 10_000 });
  expect(outcome.capture).toMatchObject({ status: 'captured' });
});

it('leaves the usage reported at the end of an answer to the capture, not to one more increment', async () => {
  // The provider counts 900 output tokens where the SDK estimated 480.
  const s = await setup(answer(6, 900));
  const metered = s.tally.meterStream(s.stream, s.options);
  for await (const _ of metered);
  const outcome = await metered.outcome;

  expect(s.posts('/increments').map((r) => r.body.usage_total.output_tokens)).toEqual([160, 320, 480]);
  expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 900 });
  expect(outcome.capture).toMatchObject({ status: 'captured' });
});

it('records a call whose provider stream broke as failed, billed for what streamed', async () => {
  const { org, key } = await createOrgWithKey(t);
  const tally = new Tally({ apiKey: key, baseUrl: server.url });
  const hold = await tally.authorize({
    member: 'u1',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    estimate: { input_tokens: 1000, max_output_tokens: 10_000 },
  });
  const broken = new Error('socket hang up');
  async function* provider() {
    for (let i = 0; i < 3; i++) yield textChunk();
    throw broken;
  }
  const metered = tally.meterStream(provider(), {
    provider: 'openai',
    authorization: hold,
    inputTokens: 1000,
    onError: () => {},
  });
  let read = 0;
  const thrown = await (async () => {
    for await (const _ of metered) read++;
  })().catch((error: unknown) => error);
  expect(thrown).toBe(broken);
  expect(read).toBe(3);
  const outcome = await metered.outcome;
  expect(outcome.usage).toEqual({ input_tokens: 1000, output_tokens: 240 });
  const [event] = await t.db.query<{ metadata: Record<string, unknown>; output_tokens: string }>(
    'SELECT metadata, output_tokens::text FROM events WHERE org_id = $1',
    [org.id],
  );
  expect(event).toEqual({
    metadata: { error: 'stream_interrupted', authorization_id: hold.id },
    output_tokens: '240',
  });
});
