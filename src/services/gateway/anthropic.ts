/** Anthropic's wire format: the Messages API, streamed (SSE) or not. */
import {
  bearer,
  type ErrorKind,
  forwardedHeaders,
  limitOutput,
  type ProviderWire,
  type SseEvent,
  type StreamState,
  textIn,
  tokenLimit,
} from './wire.ts';

const ERROR_TYPES: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  billing: 'billing_error',
  too_large: 'request_too_large',
  upstream: 'api_error',
  unavailable: 'api_error',
  internal: 'api_error',
};

const PROTOCOL_HEADERS = ['accept', 'anthropic-version', 'anthropic-beta'] as const;

/** The smallest extended-thinking budget Anthropic accepts. */
const MIN_THINKING_BUDGET = 1024;

/**
 * The request with max_tokens lowered to `tokens`. An extended-thinking budget keeps its share of
 * the output the client asked for, so the visible answer keeps its share too (a budget just below
 * max_tokens would leave the answer a few tokens); Anthropic wants it at least 1 024 and below
 * max_tokens. Null when not even the smallest budget fits below `tokens`.
 */
function withMaxTokens(body: Record<string, unknown>, rawBody: string, tokens: number): string | null {
  const thinking = body.thinking as { type?: unknown; budget_tokens?: unknown } | null | undefined;
  const budget = thinking?.type === 'enabled' ? thinking.budget_tokens : undefined;
  const asked = body.max_tokens;
  if (typeof budget !== 'number' || typeof asked !== 'number')
    return limitOutput(rawBody, 'max_tokens', tokens);
  if (tokens - 1 < MIN_THINKING_BUDGET) return null;
  const share = Math.floor((budget * tokens) / asked);
  return JSON.stringify({
    ...body,
    max_tokens: tokens,
    thinking: { ...thinking, budget_tokens: Math.min(Math.max(share, MIN_THINKING_BUDGET), tokens - 1) },
  });
}

/** A cut stream closes its open content blocks and stops with `max_tokens`, as Anthropic would. */
function messagesStream(): StreamState {
  const open = new Set<number>();
  let finished = false;
  let complete = false;
  return {
    get finished() {
      return finished;
    },
    get complete() {
      return complete;
    },
    observe(event: SseEvent) {
      const data = event.data;
      complete ||= data?.type === 'message_stop';
      // message_delta carries the final output count; only message_stop follows it.
      finished ||= complete || data?.type === 'message_delta';
      if (data && typeof data.index === 'number') {
        if (data.type === 'content_block_start') open.add(data.index);
        if (data.type === 'content_block_stop') open.delete(data.index);
      }
      return true;
    },
    trailer(outputTokens) {
      const send = (type: string, data: object) =>
        `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
      return [
        ...[...open].map((index) => send('content_block_stop', { index })),
        send('message_delta', {
          delta: { stop_reason: 'max_tokens', stop_sequence: null },
          usage: { output_tokens: outputTokens },
        }),
        send('message_stop', {}),
      ].join('');
    },
  };
}

export const anthropicWire: ProviderWire = {
  provider: 'anthropic',
  paths: ['messages'],
  // The SDK sends `x-api-key`; with `authToken` it sends a bearer token instead.
  clientSecret: (headers) => headers.get('x-api-key') ?? bearer(headers),
  upstreamHeaders(incoming, providerKey) {
    const headers = forwardedHeaders(incoming, PROTOCOL_HEADERS);
    headers['anthropic-version'] ??= '2023-06-01';
    if (providerKey) headers['x-api-key'] = providerKey;
    return headers;
  },
  prepare(_path, body, rawBody) {
    if (typeof body.model !== 'string' || body.model === '') return 'model: Field required';
    if (!Array.isArray(body.messages)) return 'messages: Field required';
    const max = tokenLimit(body, ['max_tokens']);
    if (typeof max === 'string') return max;
    return {
      model: body.model,
      stream: body.stream === true,
      maxOutputTokens: max,
      inputText: textIn([body.system, body.messages, body.tools]),
      upstreamBody: rawBody,
      withOutputLimit: (tokens) => withMaxTokens(body, rawBody, tokens),
      streamState: messagesStream,
    };
  },
  errorBody(kind, message) {
    return { type: 'error', error: { type: ERROR_TYPES[kind], message } };
  },
};
