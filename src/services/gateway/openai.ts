/** OpenAI's wire format: Chat Completions and the Responses API, streamed (SSE) or not. */
import {
  bearer,
  type ErrorKind,
  forwardedHeaders,
  limitOutput,
  type PreparedRequest,
  type ProviderWire,
  type SseEvent,
  type StreamState,
  textIn,
  tokenLimit,
} from './wire.ts';

const ERROR_TYPES: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'invalid_request_error',
  permission: 'invalid_request_error',
  not_found: 'invalid_request_error',
  billing: 'insufficient_quota',
  too_large: 'invalid_request_error',
  upstream: 'server_error',
  unavailable: 'server_error',
  internal: 'server_error',
};

// Not openai-organization or openai-project: they name an account of the key's owner (the
// operator, or the org's own upstream), which the client does not know.
const PROTOCOL_HEADERS = ['accept', 'openai-beta'] as const;

type Json = Record<string, unknown>;

/** The most answers one chat completion may ask for (OpenAI's limit on `n`). */
const MAX_CHOICES = 128;

/** How many answers a chat completion asks for (`n`, 1 when absent), or what is wrong with it. */
function choiceCount(body: Json): number | string {
  const n = body.n ?? 1;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_CHOICES
    ? n
    : `n must be an integer from 1 to ${MAX_CHOICES}`;
}

/** Chat chunks: the gateway drops the usage chunk it asked for itself, and ends a cut stream with `length`. */
function chatStream(clientWantsUsage: boolean): StreamState {
  let last: { id?: unknown; created?: unknown; model?: unknown } = {};
  const choices = new Set<number>();
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
      const chunk = event.data;
      if (!chunk) {
        complete ||= /^data: ?\[DONE\]/m.test(event.raw);
        finished ||= complete;
        return true;
      }
      last = { id: chunk.id, created: chunk.created, model: chunk.model };
      const list = Array.isArray(chunk.choices) ? (chunk.choices as Json[]) : [];
      for (const choice of list) if (typeof choice.index === 'number') choices.add(choice.index);
      // The usage chunk is the last one before [DONE].
      const usageOnly = list.length === 0 && chunk.usage != null;
      finished ||= usageOnly;
      return clientWantsUsage || !usageOnly;
    },
    trailer() {
      const ends = [...(choices.size > 0 ? choices : [0])].map(
        (index) =>
          `data: ${JSON.stringify({
            ...last,
            object: 'chat.completion.chunk',
            choices: [{ index, delta: {}, logprobs: null, finish_reason: 'length' }],
          })}\n\n`,
      );
      return `${ends.join('')}data: [DONE]\n\n`;
    },
  };
}

/** The events that end a Responses API stream, carrying its final usage. */
const RESPONSE_ENDS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Responses API events: a cut stream ends with `response.incomplete`, as when max_output_tokens is hit. */
function responsesStream(): StreamState {
  let response: Json = {};
  let sequence = 0;
  let finished = false;
  return {
    get finished() {
      return finished;
    },
    // The events that carry the final usage are the stream's last.
    get complete() {
      return finished;
    },
    observe(event: SseEvent) {
      const data = event.data;
      if (!data) return true;
      finished ||= typeof data.type === 'string' && RESPONSE_ENDS.has(data.type);
      if (typeof data.sequence_number === 'number') sequence = data.sequence_number;
      if (data.response && typeof data.response === 'object') response = data.response as Json;
      return true;
    },
    trailer() {
      const incomplete = {
        type: 'response.incomplete',
        sequence_number: sequence + 1,
        response: { ...response, status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } },
      };
      return `event: response.incomplete\ndata: ${JSON.stringify(incomplete)}\n\n`;
    },
  };
}

/**
 * An embeddings request: input only, never streamed, no output to hold for. Its input is text, a
 * list of texts, or token ids (a list of them, or a list of such lists), which count exactly.
 */
function embeddingsRequest(body: Json, rawBody: string): PreparedRequest | string {
  const input = body.input;
  const lists = Array.isArray(input) ? input : [input];
  const texts = lists.filter((x): x is string => typeof x === 'string');
  const ids = lists.flatMap((x) => (typeof x === 'number' ? [x] : Array.isArray(x) ? x : []));
  if (lists.length === 0 || texts.length + ids.length === 0 || !ids.every(Number.isSafeInteger)) {
    return 'input must be a string, an array of strings, or an array of token arrays';
  }
  return {
    model: body.model as string,
    stream: false,
    maxOutputTokens: 0,
    inputText: texts.join(' '),
    countedInputTokens: ids.length,
    upstreamBody: rawBody,
    streamState: () => chatStream(false),
  };
}

export const openaiWire: ProviderWire = {
  provider: 'openai',
  paths: ['chat/completions', 'responses', 'embeddings'],
  clientSecret: (headers) => bearer(headers),
  upstreamHeaders(incoming, providerKey) {
    const headers = forwardedHeaders(incoming, PROTOCOL_HEADERS);
    if (providerKey) headers.authorization = `Bearer ${providerKey}`;
    return headers;
  },
  prepare(path, body, rawBody) {
    if (typeof body.model !== 'string' || body.model === '') return 'model must be a non-empty string';
    const stream = body.stream === true;
    if (path === 'embeddings') return embeddingsRequest(body, rawBody);
    if (path === 'responses') {
      const max = tokenLimit(body, ['max_output_tokens']);
      if (typeof max === 'string') return max;
      return {
        model: body.model,
        stream,
        maxOutputTokens: max,
        inputText: textIn([body.instructions, body.input, body.tools]),
        upstreamBody: rawBody,
        withOutputLimit: (tokens) => limitOutput(rawBody, 'max_output_tokens', tokens),
        streamState: responsesStream,
      };
    }
    const max = tokenLimit(body, ['max_completion_tokens', 'max_tokens']);
    if (typeof max === 'string') return max;
    const choices = choiceCount(body);
    if (typeof choices === 'string') return choices;
    if (!Array.isArray(body.messages)) return 'messages must be an array';
    const options = body.stream_options;
    const clientWantsUsage =
      options !== null && typeof options === 'object' && (options as Json).include_usage === true;
    // The final usage chunk is how Tally learns the exact counts of a stream; ask for it.
    const upstreamBody =
      stream && !clientWantsUsage
        ? JSON.stringify({ ...body, stream_options: { ...(options as Json), include_usage: true } })
        : rawBody;
    return {
      model: body.model,
      stream,
      maxOutputTokens: max,
      choices,
      inputText: textIn([body.messages, body.tools, body.functions]),
      upstreamBody,
      // The field the client used; else the current one (max_tokens is refused by reasoning models).
      withOutputLimit: (tokens) =>
        limitOutput(
          upstreamBody,
          body.max_tokens != null && body.max_completion_tokens == null
            ? 'max_tokens'
            : 'max_completion_tokens',
          tokens,
        ),
      streamState: () => chatStream(clientWantsUsage),
    };
  },
  errorBody(kind, message, code) {
    return { error: { message, type: ERROR_TYPES[kind], param: null, code: code ?? null } };
  },
};
