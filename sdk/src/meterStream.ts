/**
 * Meters a model stream against a Tally authorization (hold): reports usage increments as chunks
 * arrive, ends the stream when Tally answers `stop`, and captures the final usage at the end,
 * whether the stream finished, was stopped, failed or the consumer stopped reading.
 */
import type { Authorization, AuthorizationIncrement, Capture, Usage } from './types.ts';
import { type ProviderName, StreamUsage, usageDelta } from './usage.ts';

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
}

export interface StreamOutcome {
  /** True when Tally answered `stop` and the stream was ended early. */
  stopped: boolean;
  /** The usage captured: the provider's exact counts when it reported them, else the estimate. */
  usage: Usage;
  capture: Capture;
  increments: AuthorizationIncrement[];
}

export interface HoldApi {
  increment(authorizationId: string, usage: Usage): Promise<AuthorizationIncrement>;
  capture(authorizationId: string, body: { usage: Usage; event_id?: string }): Promise<Capture>;
}

/** An async iterable of the original chunks, and the outcome once the stream is over. */
export interface MeteredStream<T> extends AsyncIterable<T> {
  readonly outcome: Promise<StreamOutcome>;
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
  const tracker = new StreamUsage(options.provider);
  const increments: AuthorizationIncrement[] = [];
  let reported: Usage = {};
  let stopped = false;
  let settle: { resolve: (o: StreamOutcome) => void; reject: (e: unknown) => void } | undefined;
  const outcome = new Promise<StreamOutcome>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Nobody may await the outcome; its failure is also thrown to the consumer of the stream.
  outcome.catch(() => {});

  async function reportIncrement(): Promise<void> {
    const delta = usageDelta(reported, tracker.usage);
    if (Object.keys(delta).length === 0) return;
    reported = tracker.usage;
    const answer = await api.increment(id, delta);
    increments.push(answer);
    if (answer.action === 'stop') stopped = true;
  }

  function finalUsage(): Usage {
    const usage = tracker.usage;
    if (usage.input_tokens === undefined && options.inputTokens) usage.input_tokens = options.inputTokens;
    return usage;
  }

  async function capture(): Promise<void> {
    try {
      const usage = finalUsage();
      const capture = await api.capture(id, {
        usage,
        ...(options.eventId ? { event_id: options.eventId } : {}),
      });
      settle?.resolve({ stopped, usage, capture, increments });
    } catch (error) {
      settle?.reject(error);
      throw error;
    }
  }

  async function* run(): AsyncGenerator<T> {
    let ended = false;
    try {
      for await (const chunk of source) {
        tracker.observe(chunk);
        yield chunk;
        const unreported = (tracker.usage.output_tokens ?? 0) - (reported.output_tokens ?? 0);
        if (!tracker.exact && unreported >= every) await reportIncrement();
        // Leaving the loop ends the source (its return() closes the provider's connection).
        if (stopped) break;
      }
      ended = true;
    } finally {
      // The source failed or the consumer stopped reading: bill what streamed; the outcome
      // carries a capture failure, the consumer gets the original error (if any).
      if (!ended) await capture().catch(() => {});
    }
    await capture();
  }

  const chunks = run();
  return { [Symbol.asyncIterator]: () => chunks, outcome };
}
