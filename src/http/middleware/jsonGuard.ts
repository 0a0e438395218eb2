/**
 * Refuses JSON bodies that are valid JSON but that Postgres cannot store or that would exhaust the
 * stack: the NUL character (text and jsonb reject it), unpaired UTF-16 surrogates (jsonb rejects
 * them) and absurd nesting. Without this each of them reached the database and answered a 500.
 * The answer is a 422 naming the field at fault, before anything is written. A NUL in the path or
 * the query string (%00) would reach Postgres the same way: a 400 naming the parameter.
 */
import type { MiddlewareHandler } from 'hono';
import { findJsonFault, MAX_JSON_DEPTH, nestsDeeperThan } from '../../domain/jsonText.ts';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** NUL and surrogates can only reach a JSON text as \u escapes, so a body without one is clean. */
const SUSPECT_ESCAPE = /\\u(0000|d[89a-f][0-9a-f]{2})/i;

/** The query parameter (or `path`) holding a NUL character, or null; parses only a URL that may. */
function urlFault(href: string): string | null {
  if (!href.includes('%00') && !href.includes('\u0000')) return null;
  const url = new URL(href);
  if (!url.href.includes('%00')) return null;
  if (url.pathname.includes('%00')) return 'path';
  for (const [name, value] of url.searchParams) if (`${name}${value}`.includes('\u0000')) return name;
  return null;
}

export function jsonGuard(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const inUrl = urlFault(c.req.url);
    if (inUrl) {
      const where = inUrl === 'path' ? 'The path' : inUrl;
      return problem(c, 400, 'invalid_field', `${where} must not contain the NUL character (%00)`, inUrl);
    }
    const type = c.req.header('content-type');
    if (!WITH_BODY.has(c.req.method) || !type || !/json/i.test(type)) return next();
    // Read as text: Hono caches it, so the validator and the idempotency check reuse it.
    const text = await c.req.text();
    const deep = nestsDeeperThan(text, MAX_JSON_DEPTH);
    if (!deep && !SUSPECT_ESCAPE.test(text)) return next();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      if (deep) {
        return problem(
          c,
          422,
          'invalid_field',
          `The request body nests more than ${MAX_JSON_DEPTH} levels deep`,
        );
      }
      return next(); // the validator answers invalid_json
    }
    const fault = findJsonFault(value);
    if (!fault) return next();
    return fault.param
      ? problem(c, 422, 'invalid_field', `${fault.param} ${fault.message}`, fault.param)
      : problem(c, 422, 'invalid_field', `The request body ${fault.message}`);
  };
}
