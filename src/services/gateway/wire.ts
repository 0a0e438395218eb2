/**
 * What the gateway needs to know of a provider's wire format: how a client authenticates, what a
 * request asks for (model, streaming, output limit, the text it sends), how errors look, and how a
 * stream is ended cleanly when Tally cuts it. One implementation per provider (openai.ts,
 * anthropic.ts); the metering itself (meterCall.ts) is the same for both.
 */
import type { ProviderName } from '../../../sdk/src/usage.ts';
import { bearerToken } from '../keys/authenticate.ts';

export type { ProviderName };

/** The kinds of error the gateway answers itself, mapped to each provider's own error types. */
export type ErrorKind =
  | 'invalid_request'
  | 'authentication'
  | 'permission'
  | 'not_found'
  | 'billing'
  | 'too_large'
  | 'upstream'
  | 'unavailable'
  | 'internal';

/** One server-sent event as it came from upstream: its exact text, its name and its parsed data. */
export interface SseEvent {
  raw: string;
  event: string | null;
  /** The JSON of its `data:` lines; `null` for `[DONE]`, a comment or data that is not JSON. */
  data: Record<string, unknown> | null;
}

/** What a metered request asks for, read from the client's body. */
export interface PreparedRequest {
  model: string;
  stream: boolean;
  /** The output limit the client set, if any: of each answer when it asks for several. */
  maxOutputTokens: number | null;
  /** How many answers one call generates (OpenAI's `n`), each up to the output limit; 1 if absent. */
  choices?: number;
  /** The text the request sends to the model (prompt, system, tools), to estimate its input tokens. */
  inputText: string;
  /** Input tokens the request sends as token ids (embeddings), counted exactly rather than estimated. */
  countedInputTokens?: number;
  /** The body to send upstream: the client's own bytes unless the gateway had to add something. */
  upstreamBody: string;
  /**
   * The upstream body with the output limit (of each answer) lowered to `tokens`, what a partial
   * hold pays for; null when the request cannot be sent with so low a limit; absent for a request
   * that produces no output (embeddings).
   */
  withOutputLimit?(tokens: number): string | null;
  /** A fresh follower for the streamed answer to this request. */
  streamState(): StreamState;
}

/** Follows one streamed answer to know what to forward and how to end it early. */
export interface StreamState {
  /** False for an event the client did not ask for (a usage chunk Tally requested for itself). */
  observe(event: SseEvent): boolean;
  /**
   * The answer is over (its final usage or closing event came): what is left unbilled is the
   * capture's, which follows at once, so no increment is sent for it.
   */
  readonly finished: boolean;
  /** The answer's closing event came (`[DONE]`, `message_stop`, a Responses end): nothing follows it. */
  readonly complete: boolean;
  /** The events that end the answer cleanly for the client's SDK, as if the output limit was hit. */
  trailer(outputTokens: number): string;
}

export interface ProviderWire {
  provider: ProviderName;
  /** The endpoints below `/v1/` that are metered (others are answered 404). */
  paths: readonly string[];
  /** The key the client sent, in the header its official SDK uses. */
  clientSecret(headers: Headers): string | undefined;
  /** Headers for the upstream request: the provider key plus the client's protocol headers. */
  upstreamHeaders(incoming: Headers, providerKey: string | null): Record<string, string>;
  /** Reads a parsed request body; a string is what is wrong with it (answered 400). */
  prepare(path: string, body: Record<string, unknown>, rawBody: string): PreparedRequest | string;
  /** An error body in the provider's own format. */
  errorBody(kind: ErrorKind, message: string, code?: string): unknown;
}

/** HTTP status of each error kind the gateway answers itself. */
export const ERROR_STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  authentication: 401,
  permission: 403,
  not_found: 404,
  billing: 402,
  too_large: 413,
  upstream: 502,
  unavailable: 503,
  internal: 500,
};

/** Parses `data:` JSON of an SSE event; `[DONE]` and anything else not an object is `null`. */
export function parseSseEvent(raw: string): SseEvent {
  let event: string | null = null;
  const data: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    else if (line.startsWith('event:')) event = line.slice(6).trim();
  }
  if (data.length === 0) return { raw, event, data: null };
  try {
    const parsed: unknown = JSON.parse(data.join('\n'));
    const isObject = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
    return { raw, event, data: isObject ? (parsed as Record<string, unknown>) : null };
  } catch {
    return { raw, event, data: null };
  }
}

/** Keys whose values are binary payloads (images, audio, files), not text the model reads as tokens. */
const BINARY_KEYS = new Set(['image_url', 'source', 'file_data', 'file', 'input_audio', 'data', 'url']);

/** Every string a request part holds, binary payloads left out, for a token estimate. */
export function textIn(value: unknown): string {
  if (typeof value === 'string') return value;
  const parts = Array.isArray(value)
    ? value
    : value !== null && typeof value === 'object'
      ? Object.entries(value)
          .filter(([key]) => !BINARY_KEYS.has(key))
          .map(([, v]) => v)
      : [];
  return parts
    .map(textIn)
    .filter((text) => text !== '')
    .join(' ');
}

/** A positive integer token limit, null when absent, or what is wrong with it. */
export function tokenLimit(body: Record<string, unknown>, names: string[]): number | null | string {
  for (const name of names) {
    const value = body[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      return `${name} must be a positive integer`;
    }
    return value;
  }
  return null;
}

/** `body` (JSON text) with `field` set to `tokens`: the output limit the provider will keep to. */
export function limitOutput(body: string, field: string, tokens: number): string {
  return JSON.stringify({ ...(JSON.parse(body) as Record<string, unknown>), [field]: tokens });
}

/** The client headers forwarded upstream: protocol options, never credentials or Tally's own. */
export function forwardedHeaders(incoming: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { 'content-type': 'application/json' };
  for (const name of names) {
    const value = incoming.get(name);
    if (value) out[name] = value;
  }
  return out;
}

export function bearer(headers: Headers): string | undefined {
  return bearerToken(headers.get('authorization'));
}
