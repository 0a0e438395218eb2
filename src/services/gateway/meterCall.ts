/**
 * One metered model call through the gateway: hold credits for the request, forward it upstream,
 * pass the answer through unchanged while metering it, capture the usage. Every refusal is answered
 * in the provider's own error format, so the client's SDK raises its usual error.
 */
import { estimateTokens, extractUsage } from '../../../sdk/src/usage.ts';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../domain/jsonText.ts';
import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import { authorize, callPricer } from '../authorizations/authorize.ts';
import { voidAuthorization } from '../authorizations/finishAuthorization.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { captureCall, meteredStream, UPSTREAM_INTERRUPTED } from './meteredStream.ts';
import type { GatewayCaller } from './resolveCaller.ts';
import { postUpstream, type UpstreamAnswer, upstreamFor, upstreamUrl } from './upstream.ts';
import { ERROR_STATUS, type ErrorKind, type PreparedRequest, type ProviderWire, textIn } from './wire.ts';

/** Output tokens held for a request that sets no limit (the catalog knows no output limits). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/**
 * An abandoned hold expires on its own after this. A stream's increments renew it; an answer that
 * takes longer without streaming is still billed by its late capture.
 */
const HOLD_TTL_SECONDS = 900;
/**
 * A stream's usage is billed at least this often while its hold covers it (sooner when it might
 * not): credits go down while an answer streams, and a Tally that dies mid-stream leaves at most
 * this much of it unbilled when the hold expires. Each increment is a transaction on the org's
 * balance lock, so billing every few tokens would cost more than the call.
 */
const BILL_EVERY_MS = 2000;

export interface GatewayCall {
  wire: ProviderWire;
  /** The endpoint below `/v1/`, e.g. `chat/completions`. */
  path: string;
  rawBody: string;
  headers: Headers;
  caller: GatewayCaller;
}

export interface GatewayLog {
  error(what: string, error: unknown): void;
}

export function providerError(wire: ProviderWire, kind: ErrorKind, message: string, code?: string): Response {
  return Response.json(wire.errorBody(kind, message, code), { status: ERROR_STATUS[kind] });
}

const SERVICE_ERROR_KINDS: Partial<Record<number, ErrorKind>> = {
  400: 'invalid_request',
  401: 'authentication',
  403: 'permission',
  404: 'not_found',
  422: 'invalid_request',
  503: 'unavailable',
};

/**
 * A refusal by a Tally verb, in the provider's format (and a 503 the client may retry); null for
 * anything else, which is Tally's own fault.
 */
export function serviceErrorAnswer(wire: ProviderWire, error: unknown): Response | null {
  const kind = error instanceof ServiceError ? SERVICE_ERROR_KINDS[error.status] : undefined;
  return kind && error instanceof ServiceError ? providerError(wire, kind, error.message, error.code) : null;
}

/**
 * Answer headers not passed on: those that described the body as it came over the wire, and those
 * about the provider account rather than the call (whose account it is, its cookies, its rate
 * limits), which is the operator's, shared by every org.
 */
const DROPPED_HEADER =
  /^(content-length|content-encoding|transfer-encoding|connection|keep-alive|set-cookie|openai-organization|openai-project|anthropic-organization-id)$|^(x-ratelimit-|anthropic-ratelimit-)/;

/** The provider's answer headers that tell the client about its call (request id, retry advice). */
export function passedHeaders(upstream: Headers): Headers {
  const headers = new Headers(upstream);
  for (const name of [...headers.keys()]) if (DROPPED_HEADER.test(name)) headers.delete(name);
  return headers;
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export async function meterCall(ctx: Ctx, call: GatewayCall, log: GatewayLog): Promise<Response> {
  const { wire, caller } = call;
  // Nesting that deep is no real request, and reading its text would exhaust the stack.
  if (nestsDeeperThan(call.rawBody, MAX_JSON_DEPTH)) {
    return providerError(
      wire,
      'invalid_request',
      `The request body nests more than ${MAX_JSON_DEPTH} levels deep`,
    );
  }
  const body = parseObject(call.rawBody);
  if (!body) return providerError(wire, 'invalid_request', 'The request body must be a JSON object');
  const request = wire.prepare(call.path, body, call.rawBody);
  if (typeof request === 'string') return providerError(wire, 'invalid_request', request);
  if (request.model.length > 200) return providerError(wire, 'invalid_request', 'model is too long');

  const inputEstimate = estimateTokens(request.inputText) + (request.countedInputTokens ?? 0);
  // Where to send the call is read while the hold is placed: one round trip less before forwarding.
  const upstreamLookup = upstreamFor(ctx.db, ctx.config, caller.orgId, wire.provider);
  upstreamLookup.catch(() => {}); // awaited below once the hold is approved; a denial never needs it
  let hold: Awaited<ReturnType<typeof authorize>>;
  try {
    hold = await authorize(ctx, {
      ...caller.attribution,
      provider: wire.provider,
      model: request.model,
      estimate: {
        input_tokens: inputEstimate,
        max_output_tokens: callOutput(request),
      },
      ttl_seconds: HOLD_TTL_SECONDS,
    });
  } catch (error) {
    const refusal = serviceErrorAnswer(wire, error);
    if (refusal) return refusal;
    throw error;
  }
  if (!hold.approved || !hold.id) {
    const reason = hold.reason ?? 'denied';
    return providerError(
      wire,
      'billing',
      `Tally refused the call (${reason}): ${hold.available_credits} credits are available`,
      reason,
    );
  }
  const authorizationId = hold.id;

  let upstream: Awaited<typeof upstreamLookup>;
  let price: (usage: Usage) => bigint;
  try {
    [upstream, price] = await Promise.all([
      upstreamLookup,
      callPricer(ctx, caller.orgId, { provider: wire.provider, model: request.model }),
    ]);
  } catch (error) {
    await voidAuthorization(ctx, authorizationId);
    throw error;
  }
  const upstreamBody =
    hold.reason === 'partial'
      ? bodyWithinHold(request, price, inputEstimate, parseUnits(hold.held_credits, CREDIT_SCALE))
      : request.upstreamBody;
  if (upstreamBody === null) {
    await voidAuthorization(ctx, authorizationId);
    return providerError(
      wire,
      'billing',
      `Tally refused the call (insufficient_room): the ${hold.held_credits} credits left under the org's credits, limits and budgets do not cover the prompt and the least output the request can be sent with`,
      'insufficient_room',
    );
  }
  const abort = new AbortController();
  let answer: UpstreamAnswer;
  try {
    answer = await postUpstream(
      upstreamUrl(upstream.baseUrl, call.path),
      wire.upstreamHeaders(call.headers, upstream.key),
      upstreamBody,
      abort.signal,
    );
  } catch (error) {
    log.error('gateway upstream unreachable', error);
    await captureCall(ctx, authorizationId, {}, log.error, 'upstream_unreachable');
    return providerError(wire, 'upstream', 'The provider could not be reached');
  }
  if (answer.status < 200 || answer.status > 299) {
    // Nothing was generated: the call is recorded as failed, with no usage (the hold is released),
    // and the provider's error passes through as it is.
    const text = await answer.text().catch(() => '');
    await captureCall(ctx, authorizationId, {}, log.error, `upstream_${answer.status}`);
    return new Response(text, { status: answer.status, headers: passedHeaders(answer.headers) });
  }
  if (answer.headers.get('content-type')?.includes('text/event-stream')) {
    const stream = meteredStream({
      ctx,
      wire,
      authorizationId,
      held: parseUnits(hold.held_credits, CREDIT_SCALE),
      price,
      billEveryMs: BILL_EVERY_MS,
      upstream: answer.body,
      abortUpstream: () => abort.abort(),
      state: request.streamState(),
      inputEstimate,
      step: ctx.config.TALLY_GATEWAY_INCREMENT_TOKENS,
      logError: log.error,
    });
    return new Response(stream, { status: answer.status, headers: passedHeaders(answer.headers) });
  }
  return plainAnswer(ctx, wire, authorizationId, answer, inputEstimate, log);
}

/** Output tokens each answer may produce: the client's limit, else the default. */
const answerOutput = (request: PreparedRequest) => request.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;

/** Output tokens the call may produce: every answer it asks for, each up to its limit. */
const callOutput = (request: PreparedRequest) => answerOutput(request) * (request.choices ?? 1);

/**
 * The body to send when the room left covers less than the request may produce; null when it does
 * not cover the prompt and the least output the request can be sent with. A whole answer is
 * capped: the provider is told to stop where the hold does, each of its answers (`n`) at an equal
 * share, so no output is served that Tally cannot bill (a stream is cut by its meter there).
 */
function bodyWithinHold(
  request: PreparedRequest,
  price: (usage: Usage) => bigint,
  inputEstimate: number,
  held: bigint,
): string | null {
  const wanted = answerOutput(request);
  const affordable = affordableOutput(price, inputEstimate, held, callOutput(request));
  if (affordable === null) return null;
  const each = Math.floor(affordable / (request.choices ?? 1));
  if (wanted > 0 && each < 1) return null;
  if (each >= wanted || request.stream || !request.withOutputLimit) return request.upstreamBody;
  return request.withOutputLimit(each);
}

/**
 * The most output tokens, up to `wanted`, that `held` units pay for after the estimated input
 * (null when not even the input fits). Prices grow with the output, so a binary search finds it.
 */
export function affordableOutput(
  price: (usage: Usage) => bigint,
  inputTokens: number,
  held: bigint,
  wanted: number,
): number | null {
  const fits = (output: number) => price({ input_tokens: inputTokens, output_tokens: output }) <= held;
  if (fits(wanted)) return wanted;
  let low = 0;
  let high = wanted;
  if (!fits(low)) return null;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle;
  }
  return low;
}

/** A whole (not streamed) answer: captured with its usage before it is passed on unchanged. */
async function plainAnswer(
  ctx: Ctx,
  wire: ProviderWire,
  authorizationId: string,
  answer: UpstreamAnswer,
  inputEstimate: number,
  log: GatewayLog,
): Promise<Response> {
  let text: string;
  try {
    text = await answer.text();
  } catch (error) {
    log.error('gateway upstream answer failed', error);
    await captureCall(ctx, authorizationId, {}, log.error, UPSTREAM_INTERRUPTED);
    return providerError(wire, 'upstream', 'The provider connection failed mid-answer');
  }
  const parsed = parseObject(text);
  // Without a usage object (a provider-compatible server may omit it), bill an estimate.
  const usage: Usage = (parsed && extractUsage(wire.provider, parsed)) ?? {
    input_tokens: inputEstimate,
    output_tokens: estimateTokens(textIn(parsed ?? text)),
  };
  await captureCall(ctx, authorizationId, usage, log.error);
  return new Response(text, { status: answer.status, headers: passedHeaders(answer.headers) });
}
