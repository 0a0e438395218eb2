/**
 * The delivery worker. Each round claims, under a lease, the oldest pending delivery of each
 * enabled endpoint that is due (FOR UPDATE SKIP LOCKED, so concurrent workers in any number of
 * processes never take the same one), posts them outside any transaction, and records the answer:
 * 2xx is success; anything else is retried with exponential backoff and jitter until 24 hours have
 * passed since the delivery's first attempt, then it fails and the endpoint's next message goes
 * out. An endpoint's message N+1 is never sent before N succeeded or failed for good. A URL whose
 * host is or resolves to a non-public address fails at once (webhookTargets.ts).
 *
 * Endpoint health: the first failed attempt since an endpoint's last success starts its failing
 * period (failing_since), and a success ends it. A failure once the period has lasted
 * TALLY_WEBHOOK_DISABLE_AFTER_DAYS disables the endpoint, in that failure's transaction
 * (disableFailingEndpoint.ts).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { newId } from '../../domain/ids.ts';
import type { Db, Queryable } from '../../store/db.ts';
import { disableFailingEndpoint } from './disableFailingEndpoint.ts';
import { UNSCHEDULED } from './shape.ts';
import { webhookHeaders } from './signWebhook.ts';
import { AddressNotAllowedError, PUBLIC_ONLY_AGENTS, refusedLiteralIp } from './webhookTargets.ts';

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
  /** TALLY_WEBHOOK_ALLOW_PRIVATE: send to loopback, private and other non-public addresses too. */
  allowPrivateAddresses?: boolean;
  /** TALLY_WEBHOOK_DISABLE_AFTER_DAYS: an endpoint failing this long since its last success is disabled. */
  disableAfterDays?: number;
}

interface Claimed {
  org_id: string;
  id: string;
  endpoint_id: string;
  message_id: string;
  attempts: number;
  url: string;
  secret: string;
  payload: unknown;
  /** The endpoint's failing period had started: a success ends it. */
  failing: boolean;
}

const LEASE_SECONDS = 60;
const ERROR_MAX = 500;

export async function deliverWebhooks(
  db: Db,
  options: DeliveryOptions = {},
): Promise<{ succeeded: number; retrying: number; failed: number }> {
  const worker = options.worker ?? newId('req').replace(/^req_/, 'wrk_');
  const send = {
    timeoutMs: options.timeoutMs ?? 10_000,
    allowPrivate: options.allowPrivateAddresses ?? false,
    disableAfterDays: options.disableAfterDays ?? 5,
  };
  const started = Date.now();
  const outcome = { succeeded: 0, retrying: 0, failed: 0 };
  for (;;) {
    const claimed = await claim(db, worker, options.batch ?? 50);
    if (claimed.length === 0) break;
    const results = await Promise.all(claimed.map((d) => attempt(db, worker, d, send)));
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
      RETURNING d.org_id, d.id, d.endpoint_id, d.message_id, d.attempts, e.url, e.secret, m.payload,
                e.failing_since IS NOT NULL AS failing`,
    [worker, LEASE_SECONDS, batch],
  );
}

interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  disableAfterDays: number;
}

async function attempt(
  db: Db,
  worker: string,
  d: Claimed,
  options: SendOptions,
): Promise<'succeeded' | 'retrying' | 'failed'> {
  const body = JSON.stringify(d.payload);
  let status: number | null = null;
  let error: string | null = null;
  // A refused address fails for good at once: it is the endpoint's setting, not an outage, and
  // retrying it for 24 hours would hold the endpoint's later messages behind it. Replay sends it
  // again once the URL or its DNS is fixed.
  let permanent = false;
  try {
    status = await post(d.url, webhookHeaders(d.secret, d.message_id, body), body, options);
    if (status < 200 || status > 299) error = `HTTP ${status}`;
  } catch (e) {
    error = describe(e);
    permanent = e instanceof AddressNotAllowedError;
  }
  if (error === null) {
    const succeeded = (q: Queryable) =>
      q.query(
        `UPDATE webhook_deliveries SET status = 'succeeded', delivered_at = now(), last_status_code = $3,
                last_error = NULL, locked_by = NULL, locked_until = NULL
          WHERE org_id = $1 AND id = $2 AND locked_by = $4`,
        [d.org_id, d.id, status, worker],
      );
    if (d.failing) {
      // A success ends the endpoint's failing period.
      await db.transaction(async (tx) => {
        await tx.query('UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1', [d.endpoint_id]);
        await succeeded(tx);
      });
    } else await succeeded(db);
    return 'succeeded';
  }
  const lastError = error.slice(0, ERROR_MAX);
  return db.transaction(async (tx) => {
    // The endpoint's row is written before its delivery's, here and above: the order every writer
    // of both keeps (updateWebhookEndpoint, deleteWebhookEndpoint), so none deadlocks with another.
    const [endpoint] = await tx.query<{ disabled: boolean; past_threshold: boolean }>(
      `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1
       RETURNING disabled, failing_since <= now() - make_interval(days => $2) AS past_threshold`,
      [d.endpoint_id, options.disableAfterDays],
    );
    // An endpoint disabled while this attempt was out gets the delivery back unscheduled, as the rest.
    const [row] = await tx.query<{ status: 'pending' | 'failed' }>(
      `UPDATE webhook_deliveries
          SET status = CASE WHEN $7::boolean OR retry_until <= now() THEN 'failed' ELSE 'pending' END,
              next_attempt_at = CASE WHEN $8::boolean THEN ${UNSCHEDULED} ELSE now() + make_interval(secs => $3) END,
              last_status_code = $4, last_error = $5, locked_by = NULL, locked_until = NULL
        WHERE org_id = $1 AND id = $2 AND locked_by = $6
        RETURNING status`,
      [
        d.org_id,
        d.id,
        retryDelaySeconds(d.attempts),
        status,
        lastError,
        worker,
        permanent,
        endpoint?.disabled ?? false,
      ],
    );
    if (endpoint?.past_threshold && !endpoint.disabled) {
      await disableFailingEndpoint(tx, d.endpoint_id, lastError);
    }
    return row?.status === 'failed' ? 'failed' : 'retrying';
  });
}

/** POSTs one delivery and answers the status code; the answer's body is not kept, only its status tells success. */
function post(
  url: string,
  signature: Record<string, string>,
  body: string,
  { timeoutMs, allowPrivate }: SendOptions,
): Promise<number> {
  const target = new URL(url);
  const refused = allowPrivate ? null : refusedLiteralIp(url);
  if (refused) return Promise.reject(new AddressNotAllowedError(refused));
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Tally-Webhooks/1',
          ...signature,
        },
        // The global agent for private targets; its pool is apart, so an unchecked connection is never reused.
        ...(allowPrivate ? {} : { agent: PUBLIC_ONLY_AGENTS[target.protocol as 'http:' | 'https:'] }),
        // Bounds the whole exchange; node:http follows no redirect (a redirect is an answer of its own).
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    // Only the timeout aborts a request.
    if (e.name === 'AbortError') return 'timed out';
    // A connection that failed on every address of a name is an AggregateError without a message.
    return e.message || (e as NodeJS.ErrnoException).code || e.name;
  }
  return String(e);
}
