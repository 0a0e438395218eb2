/**
 * A local model provider speaking OpenAI's (Chat Completions, Responses) and Anthropic's
 * (Messages) wire formats over real HTTP, streamed (SSE, with the usage chunks and cache tokens
 * each provider sends) or not. Every answer streams `chunks` text events of one token each, with
 * `chunkDelayMs` between them (for each of a chat completion's `n` choices), and reports exactly
 * those counts as usage. Answers carry the headers a provider sends about the account of the key
 * (`ACCOUNT_HEADERS`) and about the call (`CALL_HEADERS`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeBehaviour {
  /** Output tokens of an answer (one text event each), fewer if the request's limit is lower. */
  chunks: number;
  chunkDelayMs: number;
  /** Input tokens reported, cached ones included (OpenAI's meaning; Anthropic's is derived). */
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** How many of the cache writes are 1-hour ones (Anthropic's `cache_creation` breakdown). */
  cacheWrite1hTokens: number;
  /** Answer every request with this status and JSON body instead. */
  failWith: { status: number; body: unknown } | null;
  /** Drop the connection after this many streamed events, as a provider crash would. */
  dropAfterEvents: number | null;
  /**
   * Chat Completions streams carry the running usage on every chunk (vLLM's
   * `continuous_usage_stats`), not only in a last chunk.
   */
  usageOnEveryChunk: boolean;
  /** Keep a stream's connection open after its last event, as a provider that never closes it. */
  stallAtEnd: boolean;
}

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeProviders {
  url: string;
  behave(changes: Partial<FakeBehaviour>): void;
  requests: RecordedRequest[];
  /** Answers whose client went away before the end. */
  aborted(): number;
  close(): Promise<void>;
}

const DEFAULTS: FakeBehaviour = {
  chunks: 12,
  chunkDelayMs: 0,
  inputTokens: 1200,
  cacheReadTokens: 800,
  cacheWriteTokens: 100,
  cacheWrite1hTokens: 0,
  failWith: null,
  dropAfterEvents: null,
  usageOnEveryChunk: false,
  stallAtEnd: false,
};

/** Headers about the provider account that made the call: its identity, cookies and rate limits. */
export const ACCOUNT_HEADERS = {
  openai: {
    'openai-organization': 'org-operator',
    'openai-project': 'proj_operator',
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-tokens': '1999000',
    'set-cookie': '__cf_bm=operator-session; path=/; HttpOnly',
  },
  anthropic: {
    'anthropic-organization-id': '3f1c0f6e-operator',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-output-tokens-remaining': '79000',
    'set-cookie': '__cf_bm=operator-session; path=/; HttpOnly',
  },
};

/** Headers about the call itself; a 429 also tells when to retry. */
export const CALL_HEADERS = {
  openai: { 'x-request-id': 'req_fake' },
  anthropic: { 'request-id': 'req_fake' },
};
const RETRY_HEADERS = { 'retry-after': '1', 'x-should-retry': 'true' };

/** Anthropic's smallest extended-thinking budget. */
const MIN_THINKING_BUDGET = 1024;

/** The text of output token `i` (what its text event carries). */
export const tokenText = (i: number) => ` w${i}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFakeProviders(initial: Partial<FakeBehaviour> = {}): Promise<FakeProviders> {
  let behaviour: FakeBehaviour = { ...DEFAULTS, ...initial };
  const requests: RecordedRequest[] = [];
  let aborted = 0;

  async function stream(res: ServerResponse, events: AsyncIterable<string>) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let finished = false;
    res.on('close', () => {
      if (!finished) aborted++;
    });
    let sent = 0;
    for await (const event of events) {
      if (res.destroyed) return;
      if (sent++ === behaviour.dropAfterEvents) return void res.destroy();
      // Events ready at the same moment leave in one write, as a provider flushes them: a stream's
      // last token comes with its closing chunks (finish, usage, [DONE]).
      res.cork();
      res.write(event);
      process.nextTick(() => res.uncork());
    }
    if (behaviour.stallAtEnd) return;
    finished = true;
    res.end();
  }

  /**
   * Token `i` is due `(i + 1) * chunkDelayMs` after the first: a provider generates at its own
   * pace, so a late timer here makes the next wait shorter rather than delaying every later token.
   */
  async function* tokens(count: number, each: (i: number) => string) {
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const due = start + (i + 1) * behaviour.chunkDelayMs;
      if (behaviour.chunkDelayMs > 0) await sleep(Math.max(0, due - performance.now()));
      yield each(i);
    }
  }

  const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
  const named = (type: string, payload: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;

  function chatCompletions(res: ServerResponse, body: Record<string, unknown>, output: number) {
    const b = behaviour;
    const indexes = Array.from({ length: typeof body.n === 'number' ? body.n : 1 }, (_, index) => index);
    const usage = {
      prompt_tokens: b.inputTokens,
      completion_tokens: output * indexes.length,
      total_tokens: b.inputTokens + output * indexes.length,
      prompt_tokens_details: { cached_tokens: b.cacheReadTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
    };
    const base = { id: 'chatcmpl-fake', created: 1_763_000_000, model: body.model, system_fingerprint: null };
    const finish = output < b.chunks ? 'length' : 'stop';
    if (body.stream !== true) {
      const text = Array.from({ length: output }, (_, i) => tokenText(i)).join('');
      const message = { role: 'assistant', content: text, refusal: null };
      return json(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: indexes.map((index) => ({ index, message, logprobs: null, finish_reason: finish })),
        usage,
      });
    }
    const withUsage =
      (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const chunk = (choices: unknown[], extra: object = {}) =>
      data({
        ...base,
        object: 'chat.completion.chunk',
        choices,
        ...(withUsage ? { usage: null } : {}),
        ...extra,
      });
    // One chunk per choice, as OpenAI streams them.
    const eachChoice = (delta: object, finish_reason: string | null = null, extra: object = {}) =>
      indexes.map((index) => chunk([{ index, delta, logprobs: null, finish_reason }], extra)).join('');
    return stream(
      res,
      (async function* () {
        yield eachChoice({ role: 'assistant', content: '', refusal: null });
        yield* tokens(output, (i) => {
          const made = (i + 1) * indexes.length;
          return eachChoice(
            { content: tokenText(i) },
            null,
            b.usageOnEveryChunk
              ? { usage: { ...usage, completion_tokens: made, total_tokens: b.inputTokens + made } }
              : {},
          );
        });
        yield eachChoice({}, finish);
        if (withUsage) yield chunk([], { usage });
        yield 'data: [DONE]\n\n';
      })(),
    );
  }

  function responses(res: ServerResponse, body: Record<string, unknown>, output: number) {
    const b = behaviour;
    const usage = {
      input_tokens: b.inputTokens,
      input_tokens_details: { cached_tokens: b.cacheReadTokens },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: b.inputTokens + output,
    };
    const text = Array.from({ length: output }, (_, i) => tokenText(i)).join('');
    const base = { id: 'resp_fake', object: 'response', created_at: 1_763_000_000, model: body.model };
    const item = (content: object[]) => ({
      type: 'message',
      id: 'msg_fake',
      status: 'completed',
      role: 'assistant',
      content,
    });
    const done = {
      ...base,
      status: 'completed',
      output: [item([{ type: 'output_text', text, annotations: [] }])],
      usage,
    };
    if (body.stream !== true) return json(res, 200, done);
    let sequence = 0;
    const event = (type: string, payload: object) => named(type, { sequence_number: sequence++, ...payload });
    return stream(
      res,
      (async function* () {
        yield event('response.created', { response: { ...base, status: 'in_progress', output: [] } });
        yield* tokens(output, (i) =>
          event('response.output_text.delta', {
            item_id: 'msg_fake',
            output_index: 0,
            content_index: 0,
            delta: tokenText(i),
          }),
        );
        yield event('response.completed', { response: done });
      })(),
    );
  }

  /** What Anthropic says of a thinking budget it refuses, or null. */
  function thinkingFault(body: Record<string, unknown>): string | null {
    const thinking = body.thinking as { type?: string; budget_tokens?: number } | undefined;
    if (thinking?.type !== 'enabled') return null;
    const budget = thinking.budget_tokens ?? 0;
    if (budget < MIN_THINKING_BUDGET) {
      return `thinking.enabled.budget_tokens: Input should be greater than or equal to ${MIN_THINKING_BUDGET}`;
    }
    if (budget >= (body.max_tokens as number))
      return '`max_tokens` must be greater than `thinking.budget_tokens`.';
    return null;
  }

  function messages(res: ServerResponse, body: Record<string, unknown>, output: number) {
    const b = behaviour;
    const fault = thinkingFault(body);
    if (fault)
      return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: fault } });
    const usage = {
      input_tokens: b.inputTokens - b.cacheReadTokens - b.cacheWriteTokens,
      cache_creation_input_tokens: b.cacheWriteTokens,
      cache_creation: {
        ephemeral_5m_input_tokens: b.cacheWriteTokens - b.cacheWrite1hTokens,
        ephemeral_1h_input_tokens: b.cacheWrite1hTokens,
      },
      cache_read_input_tokens: b.cacheReadTokens,
    };
    const stopReason = output < b.chunks ? 'max_tokens' : 'end_turn';
    const base = {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model: body.model,
      stop_sequence: null,
    };
    if (body.stream !== true) {
      const text = Array.from({ length: output }, (_, i) => tokenText(i)).join('');
      return json(res, 200, {
        ...base,
        content: [{ type: 'text', text }],
        stop_reason: stopReason,
        usage: { ...usage, output_tokens: output },
      });
    }
    return stream(
      res,
      (async function* () {
        yield named('message_start', {
          message: { ...base, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
        });
        yield named('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
        yield named('ping', {});
        yield* tokens(output, (i) =>
          named('content_block_delta', { index: 0, delta: { type: 'text_delta', text: tokenText(i) } }),
        );
        yield named('content_block_stop', { index: 0 });
        yield named('message_delta', {
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: { output_tokens: output },
        });
        yield named('message_stop', {});
      })(),
    );
  }

  function json(res: ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    const path = req.url ?? '';
    requests.push({ path, headers: req.headers, body });
    // Anthropic clients authenticate with x-api-key.
    const provider = req.headers['x-api-key'] ? 'anthropic' : 'openai';
    const headers = {
      ...ACCOUNT_HEADERS[provider],
      ...CALL_HEADERS[provider],
      ...(behaviour.failWith?.status === 429 ? RETRY_HEADERS : {}),
    };
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    if (behaviour.failWith) return json(res, behaviour.failWith.status, behaviour.failWith.body);
    const limit = (body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens) as
      | number
      | undefined;
    const output = Math.min(behaviour.chunks, limit ?? Number.POSITIVE_INFINITY);
    if (req.method === 'GET' && path === '/v1/models') {
      // Both providers list models here; Anthropic clients authenticate with x-api-key.
      return json(
        res,
        200,
        req.headers['x-api-key']
          ? {
              data: [{ type: 'model', id: 'claude-haiku-4-5' }],
              has_more: false,
              first_id: null,
              last_id: null,
            }
          : { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'fake' }] },
      );
    }
    if (req.method === 'POST' && path === '/v1/embeddings') {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      return json(res, 200, {
        object: 'list',
        data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.25, -0.5, 0.125] })),
        model: body.model,
        usage: { prompt_tokens: behaviour.inputTokens, total_tokens: behaviour.inputTokens },
      });
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') return chatCompletions(res, body, output);
    if (req.method === 'POST' && path === '/v1/responses') return responses(res, body, output);
    if (req.method === 'POST' && path === '/v1/messages') return messages(res, body, output);
    json(res, 404, { error: { message: `no route ${path}` } });
  });
  // Idle keep-alive connections stay open longer than a slow hold takes, so a client never reuses
  // a socket the server is closing at that moment (fetch would fail the request).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    behave: (changes) => {
      behaviour = { ...behaviour, ...changes };
    },
    requests,
    aborted: () => aborted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
