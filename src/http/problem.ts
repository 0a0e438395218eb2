/** RFC 9457 problem+json answers, and the mapping from every failure to one. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { ServiceError } from '../services/errors.ts';
import { isDatabaseUnavailable } from '../store/unavailable.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  param?: string;
  request_id?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Unprocessable content',
  429: 'Too many requests',
  500: 'Internal server error',
  503: 'Service unavailable',
};

export function problem(
  c: Context,
  status: number,
  code: string,
  detail: string,
  param?: string,
  headers?: Record<string, string>,
): Response {
  const body: Problem = {
    type: `https://tally.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(param !== undefined ? { param } : {}),
    request_id: c.get('requestId' as never) as string | undefined,
  };
  return c.body(JSON.stringify(body), status as ContentfulStatusCode, {
    'content-type': 'application/problem+json',
    ...headers,
  });
}

/** `events[3].usage.input_tokens` from zod's path. */
export function paramOf(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => {
    if (typeof part === 'number') return `${acc}[${part}]`;
    return acc ? `${acc}.${String(part)}` : String(part);
  }, '');
}

const TARGETS: Record<string, string> = {
  json: 'The request body',
  query: 'The query string',
  param: 'The path',
  header: 'The headers',
};

export function validationProblem(c: Context, error: ZodError, target: string): Response {
  const issue = error.issues[0]!;
  const param = paramOf(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const full = param ? `${param}.${key}` : key;
    return problem(c, 422, 'unknown_field', `Unknown field "${full}"`, full);
  }
  const status = target === 'json' ? 422 : 400;
  // A fault of the body as a whole (an array, null, a string) names no field.
  if (!param) {
    const what = TARGETS[target] ?? target;
    const detail =
      target === 'json' && issue.code === 'invalid_type'
        ? `${what} must be a JSON object (${issue.message})`
        : `${what}: ${issue.message}`;
    return problem(c, status, 'invalid_field', detail);
  }
  return problem(c, status, 'invalid_field', `${param}: ${issue.message}`, param);
}

/** A 401 tells the client how to authenticate (RFC 9110 section 11.6.1). */
const CHALLENGE = { 'www-authenticate': 'Bearer realm="tally"' };

export function errorToProblem(c: Context, error: unknown, log: (e: unknown) => void): Response {
  if (error instanceof ServiceError) {
    return problem(
      c,
      error.status,
      error.code,
      error.message,
      error.param,
      error.status === 401 ? CHALLENGE : undefined,
    );
  }
  if (error instanceof HTTPException) {
    const status = error.status;
    if (status === 400 && /json/i.test(error.message)) {
      return problem(c, 400, 'invalid_json', 'The request body is not valid JSON');
    }
    if (status === 413) return problem(c, 413, 'payload_too_large', 'The request body is too large');
    if (status === 415) {
      return problem(c, 415, 'unsupported_media_type', 'Send the body as application/json');
    }
    return problem(c, status, 'http_error', error.message || TITLES[status] || 'Error');
  }
  const code = (error as { code?: string }).code;
  if (code === '23505') return problem(c, 409, 'conflict', 'A record with this identifier exists');
  // A total that would pass what its column holds (a BIGINT balance after many huge grants): the
  // request asked for too much, and the statement wrote nothing.
  if (code === '22003') {
    return problem(c, 422, 'out_of_range', 'A total this request adds to would pass what Tally can store');
  }
  if (isDatabaseUnavailable(error)) {
    return problem(c, 503, 'unavailable', 'The database is unavailable; retry shortly', undefined, {
      'retry-after': '1',
    });
  }
  log(error);
  return problem(c, 500, 'internal_error', 'Something went wrong on our side; it has been logged');
}
