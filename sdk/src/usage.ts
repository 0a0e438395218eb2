/**
 * Usage extraction: OpenAI and Anthropic responses and stream chunks mapped to Tally's usage counts.
 *
 * Tally's `input_tokens` counts every input token, cached or not; `cache_read_tokens`,
 * `cache_write_tokens` and `input_audio_tokens` say how many of those were of that kind,
 * `cache_audio_read_tokens` how many were both cached and audio (among the cache reads and among the
 * audio: each token is priced once), and `cache_write_1h_tokens` how many of the cache writes were
 * 1-hour ones (Anthropic prices them higher). `output_tokens` counts every output token;
 * `output_audio_tokens` how many of those were audio.
 * OpenAI's `prompt_tokens` (and the Responses and Realtime APIs' `input_tokens`) already include
 * cached and audio tokens; Anthropic's `input_tokens` excludes the tokens read from or written to the
 * cache, so they are added.
 *
 * Pure functions with no dependencies: the SDK, the gateway and tests share them.
 */

export type ProviderName = 'openai' | 'anthropic';

/** The usage counts Tally accepts on events, increments and captures. */
export interface TallyUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  cache_audio_read_tokens?: number;
  cache_write_tokens?: number;
  cache_write_1h_tokens?: number;
  input_audio_tokens?: number;
  output_audio_tokens?: number;
  images?: number;
  seconds?: number;
  requests?: number;
  web_searches?: number;
}

type Json = Record<string, unknown>;

function record(value: unknown): Json | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** Drops absent and zero counts so two spellings of the same usage compare equal. */
function compact(usage: TallyUsage): TallyUsage {
  const out: TallyUsage = {};
  for (const [key, value] of Object.entries(usage) as [keyof TallyUsage, number | undefined][]) {
    if (value) out[key] = value;
  }
  return out;
}

/**
 * An OpenAI `usage` object, from Chat Completions (`prompt_tokens`/`completion_tokens`), the
 * Responses API (`input_tokens`/`output_tokens`) or the Realtime API (`input_token_details` with
 * `cached_tokens_details`). Null when it holds no token counts.
 */
export function openAIUsage(usage: unknown): TallyUsage | null {
  const u = record(usage);
  if (!u) return null;
  const input = count(u.prompt_tokens) ?? count(u.input_tokens);
  const output = count(u.completion_tokens) ?? count(u.output_tokens);
  if (input === undefined && output === undefined) return null;
  const inputDetails =
    record(u.prompt_tokens_details) ?? record(u.input_tokens_details) ?? record(u.input_token_details);
  const outputDetails =
    record(u.completion_tokens_details) ?? record(u.output_tokens_details) ?? record(u.output_token_details);
  const cacheRead = count(inputDetails?.cached_tokens);
  const audio = count(inputDetails?.audio_tokens);
  // Capped at the counts it is among, so a malformed breakdown cannot make an event Tally refuses.
  const cachedAudio = Math.min(
    count(record(inputDetails?.cached_tokens_details)?.audio_tokens) ?? 0,
    cacheRead ?? 0,
    audio ?? 0,
  );
  // Only OpenAI-compatible servers that bill cache writes report them; OpenAI itself does not. They
  // are text input beside the cache reads and the audio, so capped at what those leave of it.
  const cacheWrite = count(inputDetails?.cache_write_tokens) ?? count(inputDetails?.cache_creation_tokens);
  const writeRoom = Math.max(0, (input ?? 0) - Math.max(cacheRead ?? 0, audio ?? 0));
  return compact({
    input_tokens: input,
    output_tokens: output,
    cache_read_tokens: cacheRead,
    cache_audio_read_tokens: cachedAudio,
    cache_write_tokens: cacheWrite === undefined ? undefined : Math.min(cacheWrite, writeRoom),
    input_audio_tokens: audio,
    output_audio_tokens: count(outputDetails?.audio_tokens),
  });
}

/** An Anthropic `usage` object. Null when it holds no token counts. */
export function anthropicUsage(usage: unknown): TallyUsage | null {
  const u = record(usage);
  if (!u) return null;
  const uncached = count(u.input_tokens);
  const output = count(u.output_tokens);
  const cacheRead = count(u.cache_read_input_tokens) ?? 0;
  const cacheWrite = count(u.cache_creation_input_tokens) ?? 0;
  if (uncached === undefined && output === undefined && !cacheRead && !cacheWrite) return null;
  const serverTools = record(u.server_tool_use);
  // Capped at the total so a malformed breakdown cannot make an event Tally refuses.
  const cacheWrite1h = Math.min(count(record(u.cache_creation)?.ephemeral_1h_input_tokens) ?? 0, cacheWrite);
  return compact({
    input_tokens: (uncached ?? 0) + cacheRead + cacheWrite,
    output_tokens: output,
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    cache_write_1h_tokens: cacheWrite1h,
    web_searches: count(serverTools?.web_search_requests),
  });
}

/**
 * The usage of a complete (non-streamed) response: an OpenAI chat completion or Responses API
 * object, or an Anthropic message. Null when the response carries no usage.
 */
export function extractUsage(provider: ProviderName, response: unknown): TallyUsage | null {
  const body = record(response);
  if (!body) return null;
  return provider === 'openai' ? openAIUsage(body.usage) : anthropicUsage(body.usage);
}

/** Tokens in a piece of text at about 4 characters a token, at least 1 (0 for no text): a hold's estimate of a prompt. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

/**
 * Output tokens assumed for streamed text before the provider reports exact counts. It errs low
 * (a chunk is at least one token; English averages over 4 characters a token), because what an
 * increment bills stays billed: the capture then bills the exact rest, never refunds.
 */
export function estimateOutputTokens(textChunks: number, characters: number): number {
  return Math.max(textChunks, Math.floor(characters / 5));
}

/** The text or tool-call arguments a stream chunk adds to the answer (what it will be billed for). */
function generatedText(provider: ProviderName, chunk: Json): string {
  if (provider === 'anthropic') {
    const delta = record(chunk.delta);
    if (chunk.type !== 'content_block_delta' || !delta) return '';
    for (const key of ['text', 'partial_json', 'thinking'] as const) {
      if (typeof delta[key] === 'string') return delta[key];
    }
    return '';
  }
  // Responses API streaming events.
  if (typeof chunk.type === 'string') return typeof chunk.delta === 'string' ? chunk.delta : '';
  // Chat Completions chunks.
  let text = '';
  for (const choice of Array.isArray(chunk.choices) ? chunk.choices : []) {
    const delta = record(record(choice)?.delta);
    if (!delta) continue;
    if (typeof delta.content === 'string') text += delta.content;
    if (typeof delta.reasoning_content === 'string') text += delta.reasoning_content;
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
      const args = record(record(call)?.function)?.arguments;
      if (typeof args === 'string') text += args;
    }
  }
  return text;
}

/**
 * Follows a model stream chunk by chunk and knows its usage so far: the provider's exact counts
 * as soon as it reports them, else a low estimate of the output generated (estimateOutputTokens).
 *
 * OpenAI reports usage in the last chat chunk (with `stream_options.include_usage`) or in
 * `response.completed`; Anthropic reports input in `message_start` and cumulative output in
 * `message_delta`.
 */
export class StreamUsage {
  private reported: TallyUsage = {};
  private textChunks = 0;
  private characters = 0;
  private outputReported = false;

  constructor(readonly provider: ProviderName) {}

  /**
   * Reads one parsed chunk (the JSON of one SSE `data:` line, or an SDK stream item). True when it
   * generated output (text, thinking or tool-call arguments), not only reported usage.
   */
  observe(chunk: unknown): boolean {
    const c = record(chunk);
    if (!c) return false;
    const text = generatedText(this.provider, c);
    if (text) {
      this.textChunks++;
      this.characters += text.length;
    }
    const usage = this.chunkUsage(c);
    if (usage) {
      // Anthropic's later events repeat or grow earlier counts; keep the largest seen for each.
      for (const [key, value] of Object.entries(usage) as [keyof TallyUsage, number][]) {
        this.reported[key] = Math.max(this.reported[key] ?? 0, value);
      }
      if (usage.output_tokens !== undefined) this.outputReported = true;
    }
    return text !== '';
  }

  /** True once the provider has reported its own output count (typically at the end of the stream). */
  get exact(): boolean {
    return this.outputReported;
  }

  /** The usage so far: reported counts, with the output estimated until the provider reports it. */
  get usage(): TallyUsage {
    if (this.outputReported) return { ...this.reported };
    return compact({
      ...this.reported,
      output_tokens: estimateOutputTokens(this.textChunks, this.characters),
    });
  }

  private chunkUsage(chunk: Json): TallyUsage | null {
    if (this.provider === 'openai') {
      const response = record(chunk.response);
      return openAIUsage(chunk.usage) ?? (response ? openAIUsage(response.usage) : null);
    }
    if (chunk.type === 'message_start') {
      const usage = anthropicUsage(record(chunk.message)?.usage);
      // message_start carries a placeholder output count; the real one comes with message_delta.
      if (usage) delete usage.output_tokens;
      return usage;
    }
    return chunk.type === 'message_delta' ? anthropicUsage(chunk.usage) : null;
  }
}
