/** The Tally client: an org API key and Tally's address, and the calls a host app makes. */
import { EventBatcher, type FailedBatch, type FlushReport, MAX_BATCH_SIZE } from './batcher.ts';
import { newId } from './ids.ts';
import { type MeteredStream, type MeterStreamOptions, meterStream } from './meterStream.ts';
import { type RetryPolicy, Transport } from './transport.ts';
import type {
  Authorization,
  AuthorizationIncrement,
  AuthorizeRequest,
  Balance,
  Capture,
  CaptureRequest,
  EmbedToken,
  EmbedTokenRequest,
  IncrementRequest,
  IngestAnswer,
  TrackedEvent,
  Usage,
  UsageEvent,
  Void,
} from './types.ts';

export interface TallyOptions {
  /** An org API key (or the operator key, then every event and hold names its `org_id`). */
  apiKey: string;
  /** Where Tally answers, e.g. `https://tally.example.com` (no `/v1`). */
  baseUrl: string;
  /** Events per POST /v1/events, at most 1 000 (default 500). */
  batchSize?: number;
  /** Send a partial batch this long after its first event (default 2 000 ms). */
  flushIntervalMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Per attempt (default 30 000 ms). */
  timeoutMs?: number;
  /** Told about tracked events that could not be delivered (default: a console warning). */
  onError?: (failure: FailedBatch) => void;
  /** Another fetch (a proxy-aware one, a test's); default the global fetch. */
  fetch?: typeof fetch;
}

/** Options of one hold call. */
export interface CallOptions {
  /**
   * The call's Idempotency-Key (default: a fresh one per call, kept through its retries). Sending a
   * call whose answer was lost again with the same key and body gets Tally's first answer instead
   * of a second hold or charge.
   */
  idempotencyKey?: string;
  /** Keep retrying on network errors, 5xx and 429 past `retry.maxRetries`, for up to this many ms. */
  retryForMs?: number;
  /** Abandons the call (its attempt and retries): it rejects with the signal's reason. */
  signal?: AbortSignal;
}

export class Tally {
  private readonly transport: Transport;
  private readonly batcher: EventBatcher;

  constructor(options: TallyOptions) {
    if (!options.apiKey) throw new TypeError('Tally needs an apiKey');
    if (!/^https?:\/\//.test(options.baseUrl ?? '')) throw new TypeError('Tally needs an http(s) baseUrl');
    this.transport = new Transport({
      apiKey: options.apiKey,
      baseUrl: options.baseUrl,
      retry: { maxRetries: 5, baseDelayMs: 200, maxDelayMs: 30_000, ...options.retry },
      timeoutMs: options.timeoutMs ?? 30_000,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    });
    this.batcher = new EventBatcher({
      batchSize: Math.min(options.batchSize ?? 500, MAX_BATCH_SIZE),
      flushIntervalMs: options.flushIntervalMs ?? 2_000,
      send: (events) => this.sendEvents(events),
      onError:
        options.onError ??
        ((failure) =>
          console.warn(`Tally: ${failure.events.length} usage events not delivered:`, failure.error)),
    });
  }

  /**
   * Queues a usage event; it is sent with others by size or interval. Returns the event's id
   * (generated when absent), which stays the same through every retry.
   */
  track(event: TrackedEvent): string {
    const complete: UsageEvent = {
      ...event,
      id: event.id ?? newId('evt'),
      occurred_at: event.occurred_at ?? new Date().toISOString(),
    };
    this.batcher.add(complete);
    return complete.id;
  }

  /** Events queued and not yet sent. */
  get pendingEvents(): number {
    return this.batcher.pendingCount;
  }

  /** Sends every queued event now and waits for every batch in flight. */
  flush(): Promise<FlushReport> {
    return this.batcher.flush();
  }

  /** Flushes; call it before the process or worker ends so no tracked event is lost. */
  shutdown(): Promise<FlushReport> {
    return this.flush();
  }

  /** POST /v1/events directly (1 to 1 000 events), retried with the same ids. */
  sendEvents(events: UsageEvent[]): Promise<IngestAnswer> {
    return this.transport.request('POST', '/v1/events', { events });
  }

  /**
   * Holds credits before a model call. A denial is an answer (`approved: false`), not an error. The
   * call's attribution (`surface`, `conversation_id`, `message_id`, `parent_id`, `metadata`, ...)
   * is given here: the event its capture records carries it.
   */
  authorize(request: AuthorizeRequest, options?: CallOptions): Promise<Authorization> {
    return this.mutate('/v1/authorizations', request, options);
  }

  /**
   * Bills usage while a call streams; `action: "stop"` means end the stream. Pass the usage since
   * the previous increment, or `{ usage_total }`: the call's running totals, billed only past what
   * Tally recorded already, so sending them again after a lost answer bills nothing twice.
   */
  increment(
    authorizationId: string,
    report: Usage | IncrementRequest,
    options?: CallOptions,
  ): Promise<AuthorizationIncrement> {
    const body = 'usage_total' in report || 'usage' in report ? report : { usage: report };
    return this.mutate(`/v1/authorizations/${encodeURIComponent(authorizationId)}/increments`, body, options);
  }

  /**
   * Records the call's final usage totals and releases the rest of the hold. Idempotent per
   * authorization, and accepted after the hold expired (the answer says `late: true`).
   */
  capture(authorizationId: string, request: CaptureRequest, options?: CallOptions): Promise<Capture> {
    return this.mutate(`/v1/authorizations/${encodeURIComponent(authorizationId)}/capture`, request, options);
  }

  /** Releases the hold (usage already billed by increments stays billed). */
  void(authorizationId: string, options?: CallOptions): Promise<Void> {
    return this.mutate(`/v1/authorizations/${encodeURIComponent(authorizationId)}/void`, undefined, options);
  }

  /**
   * Mints a short-lived token that opens the org's usage page for one of your users (by your own
   * user id) with a role; put its `url` in an iframe, or send its `token` as a bearer credential.
   */
  createEmbedToken(orgId: string, request: EmbedTokenRequest, options?: CallOptions): Promise<EmbedToken> {
    return this.mutate(`/v1/orgs/${encodeURIComponent(orgId)}/embed_tokens`, request, options);
  }

  /** The org's credits: available, held, overage, per grant kind, and the cycle's run-out projection. */
  getBalance(orgId: string, options: Pick<CallOptions, 'signal'> = {}): Promise<Balance> {
    return this.transport.request('GET', `/v1/orgs/${encodeURIComponent(orgId)}/balance`, undefined, {
      signal: options.signal,
    });
  }

  /** Wraps a model stream (OpenAI or Anthropic chunks): see MeterStreamOptions. */
  meterStream<T>(source: AsyncIterable<T>, options: MeterStreamOptions): MeteredStream<T> {
    return meterStream(this, source, options);
  }

  /** A mutating call, safe to retry: every attempt carries the same Idempotency-Key. */
  private mutate<T>(path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    return this.transport.request('POST', path, body, {
      headers: { 'idempotency-key': options.idempotencyKey ?? newId('idem') },
      retryForMs: options.retryForMs,
      signal: options.signal,
    });
  }
}
