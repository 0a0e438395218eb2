/**
 * Meters a model stream against a Tally authorization (hold): reports usage increments as chunks
 * arrive, ends the stream when Tally answers `stop`, and captures the final usage at the end,
 * whether the stream finished, was stopped, failed or the consumer stopped reading.
 *
 * Tally being unreachable does not break the stream (unless asked to stop it): the usage Tally has
 * not taken waits for a later increment or for the capture, which carries the totals and is
 * retried in the background.
 */
import type { CallOptions } from './client.ts';
import { TallyCaptureError, type TallyError, TallyNetworkError } from './errors.ts';
import { isRetryable } from './transport.ts';
import type {
  Authorization,
  AuthorizationIncrement,
  Capture,
  CaptureRequest,
  IncrementRequest,
  Usage,
} from './types.ts';
import { type ProviderName, StreamUsage } from './usage.ts';

export interface MeterStreamOptions {
  provider: ProviderName;
  /** The approved authorization (or its id) the stream is billed against. */
  authorization: Pick<Authorization, 'id'> | string;
  /** Report an increment once this many more output tokens have streamed (default 20). */
  incrementEveryTokens?: number;
  /**
   * Input tokens to capture if the stream ends before the provider reports them (OpenAI only
   * reports usage in its last chunk): typically the estimate the hold was placed with.
   */
  inputTokens?: number;
  /** The id of the event the capture records (default: one Tally derives from the authorization). */
  eventId?: string;
  /**
   * When Tally cannot be reached for an increment (network error, timeout, 5xx or 429, after the
   * client's retries): `'continue'` (default) streams on and reports the usage later; `'stop'` ends
   * the stream as a Tally `stop` does. A refusal (another 4xx, e.g. 409 `authorization_not_active`)
   * always ends it, with the error.
   */
  onUnavailable?: 'continue' | 'stop';
  /** How long to keep retrying the final capture while Tally cannot be reached (default 120 000 ms). */
  captureRetryMs?: number;
  /**
   * How long the stream waits for Tally's answer to an increment (default 2 000 ms). Past it, Tally
   * counts as unreachable: the stream goes on (or stops, with `onUnavailable: 'stop'`) while the
   * increment finishes in the background.
   */
  answerWaitMs?: number;
  /**
   * Told about each increment Tally could not be reached for, and about a capture that failed for
   * good (a TallyCaptureError holding the usage to send again). Default: a console warning.
   */
  onError?: (error: TallyError | TallyNetworkError | TallyCaptureError) => void;
}

export interface StreamOutcome {
  /**
   * True when the stream was ended early: Tally answered `stop`, or could not be reached with
   * `onUnavailable: 'stop'`.
   */
  stopped: boolean;
  /** The usage captured: the provider's exact counts when it reported them, else the estimate. */
  usage: Usage;
  /** Tally's answer to the capture (`late: true` when the hold had expired before it got through). */
  capture: Capture;
  /** Tally's answers to the increments, in order. */
  increments: AuthorizationIncrement[];
}

export interface HoldApi {
  increment(
    authorizationId: string,
    report: IncrementRequest,
    options?: CallOptions,
  ): Promise<AuthorizationIncrement>;
  capture(authorizationId: string, request: CaptureRequest, options?: CallOptions): Promise<Capture>;
}

/** An async iterable of the original chunks, and the outcome once the stream is over. */
export interface MeteredStream<T> extends AsyncIterable<T> {
  /**
   * Settles when the capture got through, or rejects with a TallyCaptureError when it failed for
   * good; possibly minutes after the stream ended (in a worker, pass it to `waitUntil`).
   */
  readonly outcome: Promise<StreamOutcome>;
}

/** The error a capture records when the provider's stream broke before its end (metadata.error). */
export const STREAM_INTERRUPTED = 'stream_interrupted';
const DEFAULT_CAPTURE_RETRY_MS = 120_000;
const DEFAULT_ANSWER_WAIT_MS = 2_000;

/** Whether `work` settles within `ms` (it goes on either way). */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

function authorizationIdOf(authorization: MeterStreamOptions['authorization']): string {
  const id = typeof authorization === 'string' ? authorization : authorization.id;
  // A denied authorization has no id: there is nothing to bill the stream against.
  if (!id) throw new TypeError('meterStream needs an approved authorization (it has no id)');
  return id;
}

export function meterStream<T>(
  api: HoldApi,
  source: AsyncIterable<T>,
  options: MeterStreamOptions,
): MeteredStream<T> {
  const id = authorizationIdOf(options.authorization);
  const every = options.incrementEveryTokens ?? 20;
  const answerWait = options.answerWaitMs ?? DEFAULT_ANSWER_WAIT_MS;
  const onError = options.onError ?? ((error) => console.warn('Tally: metering a stream:', error));
  const tracker = new StreamUsage(options.provider);
  const increments: AuthorizationIncrement[] = [];
  // The totals last sent, answered or not: the next report goes when enough streamed past them.
  let reported: Usage = {};
  // At most one call to Tally at a time.
  let sending: Promise<void> | undefined;
  // Aborts the increment in flight once the capture supersedes it.
  const superseded = new AbortController();
  // Whether the last report went unanswered (Tally unreachable): later ones do not hold the stream.
  let unreachable = false;
  // Tally refused an increment (a 4xx): the call must stop; thrown into the consumer's stream.
  let refusal: { error: unknown } | undefined;
  let stopped = false;

  // Reports are running totals, which Tally bills only past what it recorded for the call: a report
  // whose answer was lost, or that a later one supersedes, is never billed twice.
  async function send(totals: Usage): Promise<void> {
    try {
      const answer = await api.increment(id, { usage_total: totals }, { signal: superseded.signal });
      unreachable = false;
      increments.push(answer);
      if (answer.action === 'stop') stopped = true;
    } catch (error) {
      // Abandoned for the capture, which carries these totals: nothing was lost.
      if (superseded.signal.aborted) return;
      if (!isRetryable(error)) {
        refusal = { error };
        return;
      }
      unreachable = true;
      onError(error);
      if (options.onUnavailable === 'stop') stopped = true;
    }
  }

  async function reportUsage(): Promise<void> {
    if (sending) return;
    reported = tracker.usage;
    const waitForAnswer = !unreachable;
    sending = send(reported).finally(() => {
      sending = undefined;
    });
    // While Tally answers, the stream waits for each answer (it may say stop), but not for the
    // client's whole retry schedule: a slow or failing Tally must not hold up the answer.
    if (!waitForAnswer) return;
    if (!(await settlesWithin(sending, answerWait))) {
      unreachable = true;
      onError(new TallyNetworkError(`Tally did not answer an increment within ${answerWait} ms`));
      if (options.onUnavailable === 'stop') stopped = true;
    }
  }

  function finalUsage(): Usage {
    const usage = tracker.usage;
    if (usage.input_tokens === undefined && options.inputTokens) usage.input_tokens = options.inputTokens;
    return usage;
  }

  // Totals, not a delta: Tally bills the larger of them and what increments brought it, so an
  // increment it may or may not have applied is billed once either way.
  async function captureFinalUsage(): Promise<StreamOutcome> {
    // An increment in flight gets as long to answer as one the stream waits for (its answer belongs
    // in the outcome); past that it is aborted, not left to hold the capture through its retries
    // (minutes with a hung Tally, more than an edge runtime's waitUntil allows).
    if (sending && !(await settlesWithin(sending, answerWait))) superseded.abort();
    const request: CaptureRequest = {
      usage: finalUsage(),
      ...(options.eventId ? { event_id: options.eventId } : {}),
      ...(interrupted ? { error: STREAM_INTERRUPTED } : {}),
    };
    try {
      const capture = await api.capture(id, request, {
        retryForMs: options.captureRetryMs ?? DEFAULT_CAPTURE_RETRY_MS,
      });
      return { stopped, usage: request.usage, capture, increments };
    } catch (cause) {
      const error = new TallyCaptureError(id, request, cause);
      onError(error);
      throw error;
    }
  }

  let streamOver: () => void = () => {};
  const outcome = new Promise<void>((resolve) => {
    streamOver = resolve;
  }).then(captureFinalUsage);
  // Nobody may await the outcome: a failed capture also goes to onError.
  outcome.catch(() => {});

  const upstream = source[Symbol.asyncIterator]();
  // The provider's stream broke (a chunk it failed to deliver): the call is recorded as failed.
  let interrupted = false;
  const delivered: AsyncIterator<T> = {
    next: () =>
      upstream.next().catch((error: unknown) => {
        interrupted = true;
        throw error;
      }),
    return: async (value) => (upstream.return ? upstream.return(value) : { done: true, value }),
  };

  async function* run(): AsyncGenerator<T> {
    try {
      for await (const chunk of { [Symbol.asyncIterator]: () => delivered }) {
        const generated = tracker.observe(chunk);
        yield chunk;
        // Increments follow the answer as it is generated, by the provider's running counts when it
        // sends them on every chunk (vLLM's continuous usage stats), else by the estimate. A chunk
        // that generates nothing, like the usage reported at the end, is left to the capture.
        const unreported = (tracker.usage.output_tokens ?? 0) - (reported.output_tokens ?? 0);
        if (generated && unreported >= every) await reportUsage();
        if (refusal) throw refusal.error;
        // Leaving the loop ends the source (its return() closes the provider's connection).
        if (stopped) break;
      }
    } finally {
      // Finished, stopped, failed or left by the consumer: bill what streamed. The capture goes on
      // in the background, as it may be retried for minutes; the consumer gets the original error.
      streamOver();
    }
  }

  const chunks = run();
  // Once the consumer called next(), return() or throw(), the generator answers them all.
  let started = false;
  // A generator closed before its first next() never runs its body, finally included: the source
  // and the call are closed here instead, so `outcome` settles and the provider's connection ends.
  async function closeUnread(): Promise<void> {
    await chunks.return(undefined);
    try {
      await upstream.return?.();
    } finally {
      // The openai and @anthropic-ai/sdk streams close their response only once read, or through
      // their documented `controller.abort()`.
      const { controller } = source as { controller?: unknown };
      if (controller instanceof AbortController) controller.abort();
      streamOver();
    }
  }
  const metered: AsyncIterator<T> = {
    next: () => {
      started = true;
      return chunks.next();
    },
    return: async (value) => {
      if (started) return chunks.return(value);
      started = true;
      await closeUnread();
      return { done: true, value };
    },
    throw: async (error) => {
      if (started) return chunks.throw(error);
      started = true;
      await closeUnread();
      throw error;
    },
  };
  return { [Symbol.asyncIterator]: () => metered, outcome };
}
