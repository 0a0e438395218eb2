/**
 * A provider's SSE answer passed through to the client event by event, metered as it goes.
 *
 * Billing while streaming: every `step` output tokens streamed since the last increment are billed
 * through the authorization, and the stream waits for Tally's answer before running two steps
 * ahead of it. Streamed output is counted low (the SDK's StreamUsage: one token per text event,
 * or 5 characters a token if that is more), because what an increment bills stays billed; the
 * capture at the end (with the provider's exact usage) bills the rest. Anthropic's input counts,
 * exact from `message_start`, are billed as soon as they arrive.
 *
 * Endings, each settled once by a capture that releases the rest of the hold:
 * - the upstream answer completes: captured with the provider's exact usage;
 * - Tally answers `stop` (the next step would not fit the limit, or usage went unbilled): the
 *   client gets a clean end (the provider's own "output limit reached" events), upstream is aborted;
 * - the client disconnects: upstream is aborted.
 * When no exact usage arrived, the capture bills the same low estimate of the output, and the input
 * as reported (Anthropic) or estimated from the request (OpenAI).
 */
import { StreamUsage } from '../../../sdk/src/usage.ts';
import type { Usage } from '../../domain/pricing.ts';
import { captureAuthorization } from '../authorizations/finishAuthorization.ts';
import { incrementAuthorization } from '../authorizations/incrementAuthorization.ts';
import type { Ctx } from '../context.ts';
import { type ProviderWire, parseSseEvent, type StreamState } from './wire.ts';

export interface MeteredStreamOptions {
  ctx: Ctx;
  wire: ProviderWire;
  authorizationId: string;
  upstream: ReadableStream<Uint8Array>;
  abortUpstream: () => void;
  state: StreamState;
  /** Input tokens estimated from the request, billed when the provider reports none. */
  inputEstimate: number;
  /** Streamed text events per increment. */
  step: number;
  logError: (what: string, error: unknown) => void;
}

type Phase = 'streaming' | 'ending';

const EVENT_END = /\r?\n\r?\n/;
const isZero = (decimal: string) => /^0(\.0*)?$/.test(decimal);

export function meteredStream(options: MeteredStreamOptions): ReadableStream<Uint8Array> {
  const { ctx, wire, authorizationId, state } = options;
  const usage = new StreamUsage(wire.provider);
  const reader = options.upstream.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  let phase: Phase = 'streaming';
  let billedOutput = 0;
  let inputBilled = false;
  let increment: Promise<void> | null = null;
  let settled: Promise<void> | null = null;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;

  /** What the call used: exact when the provider said so, else the documented estimate. */
  function usedSoFar(): Usage {
    const used: Usage = usage.usage;
    if (!usage.exact) used.input_tokens ??= options.inputEstimate;
    return used;
  }

  function settle(): Promise<void> {
    settled ??= (async () => {
      while (increment) await increment;
      try {
        await captureAuthorization(ctx, authorizationId, { usage: usedSoFar() });
      } catch (error) {
        options.logError('gateway capture failed', error);
      }
    })();
    return settled;
  }

  function end(text: string) {
    phase = 'ending';
    options.abortUpstream();
    controller.enqueue(encoder.encode(text));
    void settle().finally(close);
  }

  /** The client may have gone away while the capture ran; then there is nothing left to close. */
  function close() {
    if (!cancelled) controller.close();
  }

  /** Tally said stop: end the answer as the provider ends one that hit its output limit. */
  function cut(why: string) {
    if (phase !== 'streaming') return;
    end(`: tally stopped this answer: ${why}\n\n${state.trailer(usedSoFar().output_tokens ?? 0)}`);
  }

  function bill(counts: Usage, followAction: boolean) {
    increment = incrementAuthorization(ctx, authorizationId, counts)
      .then(
        (answer) => {
          if (!isZero(answer.unbilled_credits)) cut('the credit limit is reached');
          else if (followAction && answer.action === 'stop') cut('the credit limit would be passed');
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

  const pendingOutput = () => (usage.exact ? 0 : (usage.usage.output_tokens ?? 0) - billedOutput);

  /** One increment at a time; the next one carries everything streamed meanwhile. */
  function meter() {
    if (increment || phase !== 'streaming' || usage.exact) return;
    const known = usage.usage;
    if (!inputBilled && known.input_tokens !== undefined) {
      inputBilled = true;
      // Input is billed once and alone, so its size never makes Tally stop the output early.
      const { input_tokens, cache_read_tokens, cache_write_tokens } = known;
      bill({ input_tokens, cache_read_tokens, cache_write_tokens }, false);
      return;
    }
    const pending = pendingOutput();
    if (pending < options.step) return;
    billedOutput += pending;
    bill({ output_tokens: pending }, true);
  }

  /** Complete events in the buffer: followed, and the ones the client gets, verbatim. */
  function drain(): string {
    let out = '';
    for (let end = EVENT_END.exec(buffer); end; end = EVENT_END.exec(buffer)) {
      const event = parseSseEvent(buffer.slice(0, end.index + end[0].length));
      buffer = buffer.slice(event.raw.length);
      if (event.data) usage.observe(event.data);
      if (state.observe(event)) out += event.raw;
    }
    return out;
  }

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull() {
      // Read until there is something to send, so every pull answers (a stream pulls once per read).
      while (phase === 'streaming') {
        // However fast upstream is, at most two steps stream ahead of what Tally has approved.
        while (increment && pendingOutput() >= options.step) await increment;
        if (phase !== 'streaming') return;
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (phase !== 'streaming') return;
          options.logError('gateway upstream stream failed', error);
          const body = wire.errorBody('upstream', 'The provider connection failed mid-answer');
          return end(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
        }
        if (phase !== 'streaming') return;
        if (chunk.done) {
          buffer += decoder.decode();
          const out = drain();
          // A last event without its closing blank line still counts.
          const last = parseSseEvent(buffer);
          if (last.data) usage.observe(last.data);
          const rest = out + buffer;
          phase = 'ending';
          if (rest) controller.enqueue(encoder.encode(rest));
          await settle();
          return close();
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        const out = drain();
        meter();
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
