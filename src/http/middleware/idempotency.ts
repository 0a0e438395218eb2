/**
 * Idempotency-Key on mutating requests: the same key with the same request answers the stored
 * response; the same key with another request is a 409. The key is claimed before the work
 * runs, so two concurrent requests with one key cannot both do it.
 */
import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function idempotencyMiddleware(db: Db): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (!key || !MUTATING.has(c.req.method)) return next();
    if (key.length > 255)
      return problem(
        c,
        400,
        'invalid_header',
        'Idempotency-Key must be at most 255 characters',
        'Idempotency-Key',
      );
    const principal = c.get('ctx').principal.id;
    const body = await c.req.text();
    const hash = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('base64url');
    const claimed = await db.query(
      `INSERT INTO idempotency_keys (principal, key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT (principal, key) DO NOTHING RETURNING key`,
      [principal, key, hash],
    );
    if (claimed.length === 0) {
      const [prior] = await db.query<{ request_hash: string; status: number | null; response: unknown }>(
        'SELECT request_hash, status, response FROM idempotency_keys WHERE principal = $1 AND key = $2',
        [principal, key],
      );
      if (!prior || prior.request_hash !== hash) {
        return problem(
          c,
          409,
          'idempotency_key_reused',
          'This Idempotency-Key was used with another request',
          'Idempotency-Key',
        );
      }
      if (prior.status === null) {
        return problem(
          c,
          409,
          'idempotency_key_in_progress',
          'A request with this Idempotency-Key is still running',
          'Idempotency-Key',
        );
      }
      return c.body(JSON.stringify(prior.response), prior.status as ContentfulStatusCode, {
        'content-type': 'application/json',
        'idempotent-replayed': 'true',
      });
    }
    await next();
    const res = c.res;
    const isJson = res.headers.get('content-type')?.includes('json');
    if (res.status >= 500 || !isJson) {
      // A failure on our side may be retried with the same key.
      await db.query('DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2', [principal, key]);
      return;
    }
    const text = await res.clone().text();
    await db.query(
      'UPDATE idempotency_keys SET status = $3, response = $4 WHERE principal = $1 AND key = $2',
      [principal, key, res.status, text],
    );
  };
}
