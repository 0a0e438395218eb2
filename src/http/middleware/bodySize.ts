/**
 * 413 for a request body over `maxSize`. Behind Node's HTTP server a body is exactly as long as its
 * Content-Length (the parser reads no more and refuses a request that also says chunked), so that
 * header decides without touching the body; reading it through hono's Request would build a full
 * web Request for every call. A chunked body, or a request from app.request() in tests, goes
 * through hono's bodyLimit, which counts the bytes as they stream.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

export function bodySizeLimit(maxSize: number, tooLarge: (c: Context) => Response): MiddlewareHandler {
  const streamed = bodyLimit({ maxSize, onError: tooLarge });
  return async (c, next) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const declared = incoming?.headers['content-length'];
    if (declared === undefined || incoming?.headers['transfer-encoding'] !== undefined) {
      return streamed(c, next);
    }
    if (Number(declared) > maxSize) return tooLarge(c);
    await next();
  };
}
