/**
 * A provider's SSE answer passed through to the client event by event, metered as it goes.
 *
 * Billing while streaming: the hold placed before the call already reserves what it covers, so
 * Tally is asked only when it must be. What was streamed and not billed yet is billed through the
 * authorization at least every `billEveryMs`, and at once when it plus one more `step` of output
 * might not fit in what is left of the hold (priced locally, on the running total, exactly as the
 * increment will bill it); then Tally bills it, from the hold and past it as far as limits allow,
 * and answers `stop` once the next step would not fit. Past the hold every step is asked for, and
 * the stream waits for Tally's answer before running two steps ahead of it. Streamed output is
 * counted low (the SDK's StreamUsage: one token per text event, or 5 characters a token if that is
 * more), because what an increment bills stays billed, or by the provider's own running counts
 * when it sends them on every chunk; the capture at the end (with the provider's exact usage)
 * bills the rest. Input counts, once reported (Anthropic's `message_start`), are billed with the
 * next increment; until then (OpenAI reports them at the end) the prompt estimated from the request
 * is kept out of what output may use, so it can still be billed at the end. Once the answer is over
 * (its final usage came), what it streamed since the last increment is left to the capture, which
 * follows at once: an increment then would only take the balance lock once more.
 *
 * Endings, each settled once by a capture that releases the rest of the hold:
 * - the upstream answer completes: captured with the provider's exact usage as soon as it comes;
 *   the client's stream ends with the answer's closing event, whether or not the provider then
 *   closes its connection (one that keeps it open is let go after a second);
 * - Tally answers `stop` (the next step would not fit the limit, or usage went unbilled): the
 *   client gets a clean end (the provider's own "output limit reached" events), upstream is aborted;
 * - the client disconnects: upstream is aborted.
 * When no exact usage arrived, the capture bills the same low estimate of the output, and the input
 * as reported (Anthropic) or estimated from the request (OpenAI).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamUsage } from '../../../sdk/src/usage.ts';
import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import { addUsage, inputOnly } from '../../domain/usageCounts.ts';
import { captureAuthorization } from '../authorizations/finishAuthorization.ts';
import { incrementAuthorization } from '../authorizations/incrementAuthorization.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { type ProviderWire, parseSseEvent, type StreamState } from './wire.ts';

export interface MeteredStreamOptions {
  ctx: Ctx;
  wire: ProviderWire;
  authorizationId: string;
  upstream: AsyncIterable<Uint8Array>;
  abortUpstream: () => void;
  state: StreamState;
  /** Input tokens estimated from the request, billed when the provider reports none. */
  inputEstimate: number;
  /** Units the hold reserved. */
  held: bigint;
  /** The call's price in units for a usage, as its increments price it. */
  price: (usage: Usage) => bigint;
  /** Output tokens (streamed text events) by which the stream runs ahead of what Tally approved. */
  step: number;
  /** Unbilled usage waits at most this long for an increment (while the hold covers it). */
  billEveryMs: number;
  logError: (what: string, error: unknown) => void;
}

type Phase = 'streaming' | 'ending';

const EVENT_END = /\r?\n\r?\n/;
const isZero = (decimal: string) => /^0(\.0*)?$/.test(decimal);

/** How long a provider may keep the connection open after the answer's closing event. */
const UPSTREAM_CLOSE_GRACE_MS = 1_000;

/** The error a call records when the provider's connection broke mid-answer. */
export const UPSTREAM_INTERRUPTED = 'upstream_interrupted';

const CAPTURE_ATTEMPTS = 5;
const FIRST_CAPTURE_RETRY_MS = 200;

/**
 * Captures a call's usage (streamed or not), tried again after 0.2 s, then twice as long each time,
 * while it fails for a reason that may pass (a database blip): a hold left to expire bills only
 * what increments billed. Trying again after a failure of unknown outcome is safe, as a repeated
 * capture replays the first one; a refusal (4xx) is final. A capture that never succeeds is logged.
 */
export async function captureCall(
  ctx: Ctx,
  authorizationId: string,
  usage: Usage,
  logError: (what: string, error: unknown) => void,
  failure?: string,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await captureAuthorization(ctx, authorizationId, { usage, error: failure });
      return;
    } catch (error) {
      const refused = error instanceof ServiceError && error.status < 500;
      if (refused || attempt === CAPTURE_ATTEMPTS) return logError('gateway capture failed', error);
      await sleep(FIRST_CAPTURE_RETRY_MS * 2 ** (attempt - 1));
    }
  }
}

export function meteredStream(options: MeteredStreamOptions): ReadableStream<Uint8Array> {
  const { ctx, wire, authorizationId, state } = options;
  const usage = new StreamUsage(wire.provider);
  const reader = options.upstream[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  let phase: Phase = 'streaming';
  let billedOutput = 0;
  let inputBilled = false;
  /** What the increments billed so far, the authorization's usage as Tally has it. */
  let billed: Usage = {};
  /** What is left of the hold, less what increments in flight will take from it. */
  let heldLeft = options.held;
  let lastBilledAt = performance.now();
  /** Output streamed when the hold was last found to cover one more step; -1: not since it changed. */
  let coveredAt = -1;
  let increment: Promise<void> | null = null;
  let settled: Promise<void> | null = null;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  /** Why the call failed, when the provider's connection broke mid-answer (the event's metadata.error). */
  let failure: string | undefined;

  /** What the call used: exact when the provider said so, else the documented estimate. */
  function usedSoFar(): Usage {
    const used: Usage = usage.usage;
    if (!usage.exact) used.input_tokens ??= options.inputEstimate;
    return used;
  }

  function settle(): Promise<void> {
    settled ??= (async () => {
      while (increment) await increment;
      await captureCall(ctx, authorizationId, usedSoFar(), options.logError, failure);
    })();
    return settled;
  }

  function end(text: string) {
    phase = 'ending';
    options.abortUpstream();
    controller.enqueue(encoder.encode(text));
    void settle().finally(close);
  }

  /** The answer is over: its last events go to the client, which is closed once it is captured. */
  async function finish(rest: string) {
    phase = 'ending';
    if (rest) controller.enqueue(encoder.encode(rest));
    await settle();
    close();
  }

  /**
   * Reads what upstream sends after the closing event (normally only the connection's end, so the
   * connection can be reused), and lets go of a provider that keeps it open for long.
   */
  async function releaseUpstream() {
    const timer = setTimeout(options.abortUpstream, UPSTREAM_CLOSE_GRACE_MS);
    try {
      while (!(await reader.next()).done);
    } catch {
      // Aborted, or the connection failed after the answer was over: nothing of the answer is lost.
    } finally {
      clearTimeout(timer);
    }
  }

  /** The client may have gone away while the capture ran; then there is nothing left to close. */
  function close() {
    if (!cancelled) controller.close();
  }

  /** Tally said stop: end the answer as the provider ends one that hit its output limit. */
  function cut(why: string) {
    // An answer that is over has nothing left to cut: its end already went to the client.
    if (phase !== 'streaming' || state.finished) return;
    end(`: tally stopped this answer: ${why}\n\n${state.trailer(usedSoFar().output_tokens ?? 0)}`);
  }

  function bill(counts: Usage) {
    const before = billed;
    billed = addUsage(billed, counts);
    const share = options.price(billed) - options.price(before);
    heldLeft = heldLeft > share ? heldLeft - share : 0n;
    coveredAt = -1;
    lastBilledAt = performance.now();
    increment = incrementAuthorization(
      ctx,
      authorizationId,
      { usage: counts },
      // Whether one more step fits is judged with the prompt the provider has not reported yet:
      // it is billed at capture, so output must leave room for it.
      addUsage(unreportedInput(), { output_tokens: options.step }),
    )
      .then(
        (answer) => {
          heldLeft = parseUnits(answer.held_credits, CREDIT_SCALE);
          coveredAt = -1;
          if (!isZero(answer.unbilled_credits)) cut('the credit limit is reached');
          else if (answer.action === 'stop') cut('the credit limit would be passed');
        },
        (error) => {
          options.logError('gateway increment failed', error);
          cut('metering failed');
        },
      )
      .finally(() => {
        increment = null;
        meter();
      });
  }

  const pendingOutput = () => (usage.usage.output_tokens ?? 0) - billedOutput;

  /**
   * The input counts, once the provider reported them (Anthropic's `message_start`, a provider
   * that reports running usage on every chunk) and until billed.
   */
  function pendingInput(): Usage | null {
    if (inputBilled) return null;
    const known = usage.usage;
    return known.input_tokens === undefined ? null : inputOnly(known);
  }

  /** The prompt as estimated from the request, while the provider has reported no input count. */
  const unreportedInput = (): Usage =>
    inputBilled || usage.usage.input_tokens !== undefined ? {} : { input_tokens: options.inputEstimate };

  /**
   * Whether what is streamed and not billed, plus one more step of output, still fits in what is
   * left of the hold, room kept for a prompt still to be billed (OpenAI reports it at the end): then
   * it needs no answer from Tally yet. Checked again one step later.
   */
  function coveredByHold(): boolean {
    const output = billedOutput + pendingOutput();
    const input = pendingInput();
    if (!input && coveredAt >= 0 && output < coveredAt + options.step) return true;
    const ahead = addUsage(input ?? unreportedInput(), { output_tokens: pendingOutput() + options.step });
    const covered = options.price(addUsage(billed, ahead)) - options.price(billed) <= heldLeft;
    coveredAt = covered ? output : -1;
    return covered;
  }

  /**
   * One increment at a time; the next one carries everything streamed meanwhile. Called when an
   * event generated output (a usage-only event, like the one a stream ends with, is the capture's).
   */
  function meter() {
    if (increment || phase !== 'streaming' || state.finished) return;
    const input = pendingInput();
    const pending = pendingOutput();
    if (!input && pending <= 0) return;
    const due = performance.now() - lastBilledAt >= options.billEveryMs;
    if (!due && ((!input && pending < options.step) || coveredByHold())) return;
    inputBilled ||= input !== null;
    billedOutput += pending;
    bill(addUsage(input ?? {}, pending > 0 ? { output_tokens: pending } : {}));
  }

  /**
   * Complete events in the buffer: followed, and the ones the client gets, verbatim; and whether
   * any of them generated output.
   */
  function drain(): { out: string; generated: boolean } {
    let out = '';
    let generated = false;
    for (let end = EVENT_END.exec(buffer); end; end = EVENT_END.exec(buffer)) {
      const event = parseSseEvent(buffer.slice(0, end.index + end[0].length));
      buffer = buffer.slice(event.raw.length);
      if (event.data && usage.observe(event.data)) generated = true;
      if (state.observe(event)) out += event.raw;
    }
    return { out, generated };
  }

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull() {
      // Read until there is something to send, so every pull answers (a stream pulls once per read).
      while (phase === 'streaming') {
        // However fast upstream is, past the hold at most two steps stream ahead of what Tally approved.
        while (increment && pendingOutput() >= options.step && !coveredByHold()) await increment;
        if (phase !== 'streaming') return;
        let chunk: IteratorResult<Uint8Array>;
        try {
          chunk = await reader.next();
        } catch (error) {
          if (phase !== 'streaming') return;
          // The answer was over and went to the client whole: the connection's end is no error of it.
          if (state.finished) return finish('');
          options.logError('gateway upstream stream failed', error);
          failure = UPSTREAM_INTERRUPTED;
          const body = wire.errorBody('upstream', 'The provider connection failed mid-answer');
          return end(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
        }
        if (phase !== 'streaming') return;
        if (chunk.done) {
          buffer += decoder.decode();
          const { out } = drain();
          // A last event without its closing blank line still counts.
          const last = parseSseEvent(buffer);
          if (last.data) usage.observe(last.data);
          return finish(out + buffer);
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        const { out, generated } = drain();
        if (generated) meter();
        // Nothing follows the closing event: the client's answer ends with it, even when the
        // provider keeps its connection open.
        if (state.complete) {
          void releaseUpstream();
          return finish(out);
        }
        // The final usage came: capture now, not when upstream closes (which a stalled provider may never do).
        if (state.finished) void settle();
        if (out) {
          controller.enqueue(encoder.encode(out));
          return;
        }
      }
    },
    async cancel() {
      cancelled = true;
      // The client went away: stop paying the provider, bill what was streamed.
      if (phase !== 'streaming') return;
      phase = 'ending';
      options.abortUpstream();
      await settle();
    },
  });
}
