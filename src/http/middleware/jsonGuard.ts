/**
 * Refuses JSON bodies that are valid JSON but that Postgres cannot store or that would exhaust the
 * stack: the NUL character (text and jsonb reject it), unpaired UTF-16 surrogates (jsonb rejects
 * them) and absurd nesting. Without this each of them reached the database and answered a 500.
 * The answer is a 422 naming the field at fault, before anything is written. A NUL in the path or
 * the query string (%00) would reach Postgres the same way: a 400 naming the parameter.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

export const MAX_JSON_DEPTH = 32;

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** NUL and surrogates can only reach a JSON text as \u escapes, so a body without one is clean. */
const SUSPECT_ESCAPE = /\\u(0000|d[89a-f][0-9a-f]{2})/i;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether brackets outside strings nest deeper than `max`, in one pass over the text. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++;
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max) return true;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return false;
}

function textFault(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (LONE_SURROGATE.test(text)) return 'must be valid Unicode text (it has an unpaired surrogate)';
  return null;
}

const join = (path: string, key: string | number) =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

/** The first value (or key) that cannot be stored, with its path written like `events[0].metadata.x`. */
export function findJsonFault(
  value: unknown,
  path = '',
  depth = 0,
): { param: string; message: string } | null {
  if (typeof value === 'string') {
    const fault = textFault(value);
    return fault ? { param: path, message: fault } : null;
  }
  if (value === null || typeof value !== 'object') return null;
  if (depth >= MAX_JSON_DEPTH) {
    return { param: path, message: `must not nest more than ${MAX_JSON_DEPTH} levels deep` };
  }
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    if (typeof key === 'string') {
      const fault = textFault(key);
      if (fault) return { param: join(path, key), message: `has a name that ${fault}` };
    }
    const found = findJsonFault(child, join(path, key), depth + 1);
    if (found) return found;
  }
  return null;
}

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
