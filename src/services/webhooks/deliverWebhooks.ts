/**
 * The delivery worker. Each round claims, under a lease, the oldest pending delivery of each
 * endpoint that is due (FOR UPDATE SKIP LOCKED, so concurrent workers in any number of processes
 * never take the same one), posts them outside any transaction, and records the answer: 2xx is
 * success; anything else is retried with exponential backoff and jitter until 24 hours have
 * passed since the delivery's first attempt, then it fails and the endpoint's next message goes
 * out. An endpoint's message N+1 is never sent before N succeeded or failed for good.
 */
import { newId } from '../../domain/ids.ts';
import type { Db } from '../../store/db.ts';
import { webhookHeaders } from './signWebhook.ts';

/** Seconds to wait after the n-th failed attempt (1-based): 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then 2 h. */
const BACKOFF_SECONDS = [5, 30, 120, 600, 1800, 3600];
const LATER_SECONDS = 7200;

export function retryDelaySeconds(attempts: number, random = Math.random): number {
  const base = BACKOFF_SECONDS[attempts - 1] ?? LATER_SECONDS;
  // +-20 % jitter, so endpoints that failed together do not retry in lockstep.
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}

export interface DeliveryOptions {
  /** Names this worker's leases. */
  worker?: string;
  /** Most deliveries (one per endpoint) claimed per round. */
  batch?: number;
  /** Per request. */
  timeoutMs?: number;
  /** No new round starts after this long, so the job ends in time for the next tick. */
  budgetMs?: number;
}

interface Claimed {
  org_id: string;
  id: string;
  message_id: string;
  attempts: number;
  url: string;
  secret: string;
  payload: unknown;
}

const LEASE_SECONDS = 60;
const ERROR_MAX = 500;

export async function deliverWebhooks(
  db: Db,
  options: DeliveryOptions = {},
): Promise<{ succeeded: number; retrying: number; failed: number }> {
  const worker = options.worker ?? newId('req').replace(/^req_/, 'wrk_');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const started = Date.now();
  const outcome = { succeeded: 0, retrying: 0, failed: 0 };
  for (;;) {
    const claimed = await claim(db, worker, options.batch ?? 50);
    if (claimed.length === 0) break;
    const results = await Promise.all(claimed.map((d) => attempt(db, worker, d, timeoutMs)));
    for (const r of results) outcome[r]++;
    if (Date.now() - started > (options.budgetMs ?? 20_000)) break;
  }
  return outcome;
}

/**
 * Takes the due head of each endpoint's queue: pending, not leased, nothing older pending for it.
 * A head's first attempt starts its 24 hours of retries: the time it waited behind the one before
 * does not count against it.
 */
async function claim(db: Db, worker: string, batch: number): Promise<Claimed[]> {
  // MATERIALIZED: the locking subquery runs exactly once, so one round never takes more than `batch`.
  return db.query<Claimed>(
    `WITH heads AS MATERIALIZED (
       SELECT c.org_id, c.id FROM webhook_deliveries c
         JOIN webhook_endpoints ce ON ce.id = c.endpoint_id
        WHERE c.status = 'pending' AND c.next_attempt_at <= now()
          AND (c.locked_until IS NULL OR c.locked_until < now())
          AND ce.deleted_at IS NULL AND NOT ce.disabled
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                           WHERE p.endpoint_id = c.endpoint_id AND p.status = 'pending' AND p.seq < c.seq)
        ORDER BY c.next_attempt_at, c.seq
        LIMIT $3
        FOR UPDATE OF c SKIP LOCKED
     )
     UPDATE webhook_deliveries d
        SET locked_by = $1, locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1,
            last_attempt_at = now(), retry_until = COALESCE(d.retry_until, now() + interval '24 hours')
       FROM heads h, webhook_endpoints e, webhook_messages m
      WHERE d.org_id = h.org_id AND d.id = h.id
        AND e.id = d.endpoint_id AND m.org_id = d.org_id AND m.id = d.message_id
      RETURNING d.org_id, d.id, d.message_id, d.attempts, e.url, e.secret, m.payload`,
    [worker, LEASE_SECONDS, batch],
  );
}

async function attempt(
  db: Db,
  worker: string,
  d: Claimed,
  timeoutMs: number,
): Promise<'succeeded' | 'retrying' | 'failed'> {
  const body = JSON.stringify(d.payload);
  let status: number | null = null;
  let error: string | null = null;
  try {
    const res = await fetch(d.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Tally-Webhooks/1',
        ...webhookHeaders(d.secret, d.message_id, body),
      },
      body,
      // A redirect is an answer of its own, not followed: the endpoint is the URL registered.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.status;
    // The answer's body is not kept: only its status tells success.
    await res.body?.cancel().catch(() => {});
    if (status < 200 || status > 299) error = `HTTP ${status}`;
  } catch (e) {
    error = describe(e);
  }
  if (error === null) {
    await db.query(
      `UPDATE webhook_deliveries SET status = 'succeeded', delivered_at = now(), last_status_code = $3,
              last_error = NULL, locked_by = NULL, locked_until = NULL
        WHERE org_id = $1 AND id = $2 AND locked_by = $4`,
      [d.org_id, d.id, status, worker],
    );
    return 'succeeded';
  }
  const [row] = await db.query<{ status: 'pending' | 'failed' }>(
    `UPDATE webhook_deliveries
        SET status = CASE WHEN retry_until <= now() THEN 'failed' ELSE 'pending' END,
            next_attempt_at = now() + make_interval(secs => $3), last_status_code = $4, last_error = $5,
            locked_by = NULL, locked_until = NULL
      WHERE org_id = $1 AND id = $2 AND locked_by = $6
      RETURNING status`,
    [d.org_id, d.id, retryDelaySeconds(d.attempts), status, error.slice(0, ERROR_MAX), worker],
  );
  return row?.status === 'failed' ? 'failed' : 'retrying';
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError') return 'timed out';
    // fetch says only "fetch failed"; the cause says why (ECONNREFUSED, a closed socket, DNS).
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = [cause?.code, cause?.message].filter(Boolean).join(' ');
    return why ? `${e.message}: ${why}` : e.message;
  }
  return String(e);
}
