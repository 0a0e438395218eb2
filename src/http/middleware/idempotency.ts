/**
 * Idempotency-Key on mutating requests: the same key with the same request answers the stored
 * response (byte for byte, flagged `idempotent-replayed: true`); the same key with another request
 * is a 409. The key is claimed before the work runs, so two concurrent requests with one key cannot
 * both do it: the second gets a 409 `idempotency_key_in_progress` and may retry.
 *
 * A response that carries a secret (an API key, a signing secret, a token) is never stored: the
 * secret is shown once, and the database keeps hashes only. A replay of such a request answers a
 * 409 that names the object created the first time, so the client can revoke it and start again.
 */
import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Principal } from '../../services/context.ts';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Top-level answer fields that hold a secret shown only once (`key` only when it is a Tally key). */
export const SECRET_FIELDS = ['key', 'secret', 'token', 'signing_secret', 'client_secret'] as const;
/**
 * A request in progress renews its claim every `heartbeatMs`; a claim not renewed for `staleMs`
 * (its process died mid-request) may be taken over, so a client's resend gets through within
 * seconds instead of waiting out a fixed lease.
 */
export interface ClaimTiming {
  heartbeatMs: number;
  staleMs: number;
}
const CLAIM_TIMING: ClaimTiming = { heartbeatMs: 5_000, staleMs: 30_000 };
const KEY_SHAPE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

interface Withheld {
  withheld_secret: true;
  object: string | null;
  id: string | null;
}

function holdsSecret(body: unknown): body is Record<string, unknown> {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    SECRET_FIELDS.some((f) => {
      const value = (body as Record<string, unknown>)[f];
      return typeof value === 'string' && (f !== 'key' || value.startsWith('tally_'));
    })
  );
}

const isWithheld = (stored: unknown): stored is Withheld =>
  typeof stored === 'object' && stored !== null && (stored as Withheld).withheld_secret === true;

/**
 * Whose keys a key is among: an API key's or the operator's own, a member's per role, so a replay
 * never answers what another of the member's embed tokens (an owner's, say, to a viewer's) was
 * allowed; the replay runs before the route's permission check.
 */
const replayScope = (principal: Principal): string =>
  principal.kind === 'embed' ? `${principal.id}#${principal.role}` : principal.id;

export function idempotencyMiddleware(db: Db, timing = CLAIM_TIMING): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (key === undefined || !MUTATING.has(c.req.method)) return next();
    if (!KEY_SHAPE.test(key)) {
      return problem(
        c,
        400,
        'invalid_header',
        'Idempotency-Key must be 1 to 255 printable ASCII characters',
        'Idempotency-Key',
      );
    }
    const principal = replayScope(c.get('ctx').principal);
    const url = new URL(c.req.url);
    const body = await c.req.text();
    const hash = createHash('sha256')
      .update(`${c.req.method} ${url.pathname}${url.search}\n${body}`)
      .digest('base64url');
    const claimed = await db.query(
      `INSERT INTO idempotency_keys (principal, key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT (principal, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now()
         WHERE idempotency_keys.status IS NULL
           AND idempotency_keys.created_at < now() - make_interval(secs => $4::double precision / 1000)
       RETURNING key`,
      [principal, key, hash, timing.staleMs],
    );
    if (claimed.length === 0) return answerFromPrior(c, db, principal, key, hash);

    const heartbeat = setInterval(() => {
      db.query(
        'UPDATE idempotency_keys SET created_at = now() WHERE principal = $1 AND key = $2 AND status IS NULL',
        [principal, key],
      ).catch(() => {});
    }, timing.heartbeatMs);
    heartbeat.unref();
    try {
      await next();
    } finally {
      clearInterval(heartbeat);
    }
    const res = c.res;
    const type = res.headers.get('content-type') ?? '';
    let text: string | null = null;
    if (res.status < 500 && /json/i.test(type)) text = await res.clone().text();
    try {
      if (text === null) {
        // A failure on our side may be retried with the same key.
        await db.query('DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2', [principal, key]);
        return;
      }
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {}
      // Stored as a JSON string, so the replay is the same bytes (jsonb would reorder the keys).
      const stored: unknown =
        res.status < 300 && holdsSecret(parsed)
          ? ({
              withheld_secret: true,
              object: typeof parsed.object === 'string' ? parsed.object : null,
              id: typeof parsed.id === 'string' ? parsed.id : null,
            } satisfies Withheld)
          : text;
      await db.query(
        'UPDATE idempotency_keys SET status = $3, response = $4 WHERE principal = $1 AND key = $2',
        [principal, key, res.status, JSON.stringify(stored)],
      );
    } catch {
      // The work is done and its answer is on its way; a retry will see the claim as in progress
      // until it goes stale.
    }
  };
}

async function answerFromPrior(
  c: Parameters<MiddlewareHandler<AppEnv>>[0],
  db: Db,
  principal: string,
  key: string,
  hash: string,
): Promise<Response> {
  const [prior] = await db.query<{ request_hash: string; status: number | null; response: unknown }>(
    'SELECT request_hash, status, response FROM idempotency_keys WHERE principal = $1 AND key = $2',
    [principal, key],
  );
  if (!prior) {
    // Deleted after a failure between our insert and this read: the client may simply retry.
    return problem(
      c,
      409,
      'idempotency_key_in_progress',
      'A request with this Idempotency-Key just failed; retry it',
      'Idempotency-Key',
      { 'retry-after': '1' },
    );
  }
  if (prior.request_hash !== hash) {
    return problem(
      c,
      409,
      'idempotency_key_reused',
      'This Idempotency-Key was used with another request (method, path or body differ)',
      'Idempotency-Key',
    );
  }
  if (prior.status === null) {
    return problem(
      c,
      409,
      'idempotency_key_in_progress',
      'A request with this Idempotency-Key is still running; retry shortly',
      'Idempotency-Key',
      { 'retry-after': '1' },
    );
  }
  if (isWithheld(prior.response)) {
    const what = prior.response.id
      ? `${prior.response.object ?? 'object'} ${prior.response.id}`
      : 'the object';
    return problem(
      c,
      409,
      'idempotency_secret_withheld',
      `The first request with this Idempotency-Key created ${what}; its secret is shown only once and is not replayed. Revoke it if the secret was lost, and create another with a new Idempotency-Key`,
      'Idempotency-Key',
    );
  }
  const text = typeof prior.response === 'string' ? prior.response : JSON.stringify(prior.response);
  return c.body(text, prior.status as ContentfulStatusCode, {
    'content-type': prior.status >= 400 ? 'application/problem+json' : 'application/json',
    'idempotent-replayed': 'true',
  });
}
