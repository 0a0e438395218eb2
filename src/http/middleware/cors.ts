/**
 * CORS for the origins the operator lists in TALLY_CORS_ORIGINS, and for no other: a browser page
 * from another origin gets no Access-Control-Allow-Origin, so it cannot read any answer. With the
 * variable unset no CORS header is ever sent (the API is called from servers; the dashboard is
 * served from Tally's own origin).
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { AppEnv } from '../env.ts';

/** What a browser client may send and read. */
const ALLOW_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'x-request-id', 'x-api-key'];
const EXPOSE_HEADERS = ['x-request-id', 'retry-after', 'idempotent-replayed', 'content-disposition'];

export function corsMiddleware(origins: string[]): MiddlewareHandler<AppEnv> {
  if (origins.length === 0) return (_c, next) => next();
  return cors({
    origin: (origin) => (origins.includes(origin) ? origin : null),
    allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ALLOW_HEADERS,
    exposeHeaders: EXPOSE_HEADERS,
    maxAge: 600,
  });
}
