/**
 * HTTP to Tally with fetch only (Node 20+, Deno, Bun, edge workers). Retries with exponential
 * backoff and jitter, and only when a retry cannot change the outcome: the network failed, the
 * server failed (5xx), asked to slow down (429, honouring Retry-After) or is still running an
 * earlier attempt of the same call (409 `idempotency_key_in_progress`). Every other answer is final.
 */
import { errorFromResponse, TallyError, TallyNetworkError } from './errors.ts';

export interface RetryPolicy {
  /** Retries after the first attempt (default 5). */
  maxRetries: number;
  /** The first backoff in milliseconds, doubled on each retry (default 200). */
  baseDelayMs: number;
  /** The longest wait between attempts, Retry-After included (default 30 000). */
  maxDelayMs: number;
}

export interface TransportOptions {
  apiKey: string;
  baseUrl: string;
  retry: RetryPolicy;
  /** Abort an attempt that takes longer (default 30 000 ms); it counts as a network error. */
  timeoutMs: number;
  fetch: typeof fetch;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Keep retrying past `maxRetries` while the next attempt starts within this many ms of the first. */
  retryForMs?: number;
  /** Abandons the call: the attempt running and any retry end, and it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Tally could not be reached or could not answer yet: the same call may succeed later. */
export function isRetryable(error: unknown): error is TallyError | TallyNetworkError {
  if (error instanceof TallyNetworkError) return true;
  return (
    error instanceof TallyError &&
    (error.status === 429 || error.status >= 500 || error.code === 'idempotency_key_in_progress')
  );
}

/** The wait before retry number `attempt` (0-based): half fixed, half random ("equal jitter"). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const abandon = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abandon);
      resolve();
    }, ms);
    signal?.addEventListener('abort', abandon, { once: true });
  });
}

export class Transport {
  private readonly baseUrl: string;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  /**
   * One JSON request, retried per the policy. The body and headers are identical on every
   * attempt, so a retried call is the same call (same event ids, same Idempotency-Key).
   */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const { retry } = this.options;
    const { signal } = options;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const retryUntil = options.retryForMs === undefined ? undefined : Date.now() + options.retryForMs;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await this.attempt<T>(method, path, payload, options.headers ?? {}, signal);
      } catch (error) {
        // Abandoned by the caller: neither a network failure to report nor one to retry.
        signal?.throwIfAborted();
        if (!isRetryable(error)) throw error;
        const asked = error instanceof TallyError ? error.retryAfterSeconds : undefined;
        const wait = Math.min(
          asked !== undefined ? asked * 1000 : backoffDelay(attempt, retry),
          retry.maxDelayMs,
        );
        const retriesLeft =
          attempt < retry.maxRetries || (retryUntil !== undefined && Date.now() + wait <= retryUntil);
        if (!retriesLeft) throw error;
        await sleep(wait, signal);
      }
    }
  }

  private async attempt<T>(
    method: string,
    path: string,
    payload: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let response: Response;
    try {
      response = await this.options.fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: payload,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (cause) {
      throw new TallyNetworkError(`${method} ${path} failed: ${(cause as Error)?.message ?? cause}`, {
        cause,
      });
    }
    if (!response.ok) throw await errorFromResponse(response);
    try {
      return (await response.json()) as T;
    } catch (cause) {
      // The connection dropped mid-body: the server may have acted, which retrying is safe for.
      throw new TallyNetworkError(`${method} ${path}: the answer was cut off`, { cause });
    }
  }
}
