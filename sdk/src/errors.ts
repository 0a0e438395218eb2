/** Failures as the SDK reports them: Tally's problem+json answers, the network, and lost captures. */
import type { CaptureRequest } from './types.ts';

/** An error answer from Tally, parsed from its `application/problem+json` body. */
export class TallyError extends Error {
  override readonly name = 'TallyError';
  readonly status: number;
  /** A URI naming the kind of problem, e.g. `https://tally.dev/problems/quota_exceeded`. */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The short machine name of the problem, e.g. `invalid_field`. */
  readonly code: string;
  /** The request field at fault, e.g. `events[3].usage.input_tokens`. */
  readonly param: string | undefined;
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait before retrying (429, 503), when it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(fields: {
    status: number;
    type: string;
    title: string;
    detail: string;
    code: string;
    param?: string;
    requestId?: string;
    retryAfterSeconds?: number;
  }) {
    super(`${fields.status} ${fields.title}: ${fields.detail}`);
    this.status = fields.status;
    this.type = fields.type;
    this.title = fields.title;
    this.detail = fields.detail;
    this.code = fields.code;
    this.param = fields.param;
    this.requestId = fields.requestId;
    this.retryAfterSeconds = fields.retryAfterSeconds;
  }
}

/** The request never got an HTTP answer (connection refused or dropped, DNS, timeout). */
export class TallyNetworkError extends Error {
  override readonly name = 'TallyNetworkError';
}

/**
 * A metered stream's capture failed for good (`cause` says why: a TallyError or TallyNetworkError).
 * Its usage is kept: `tally.capture(error.authorizationId, error.request)` sends it again later; a
 * capture is idempotent per authorization, and Tally takes it after the hold expired.
 */
export class TallyCaptureError extends Error {
  override readonly name = 'TallyCaptureError';

  constructor(
    readonly authorizationId: string,
    readonly request: CaptureRequest,
    cause: unknown,
  ) {
    super(`Capture of ${authorizationId} failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** `Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 section 10.2.3). */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

/** Builds the TallyError of a non-2xx answer; a body that is not problem+json still gives one. */
export async function errorFromResponse(response: Response): Promise<TallyError> {
  const text = await response.text().catch(() => '');
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): the status line is all there is.
  }
  const code = str(body.code) ?? `http_${response.status}`;
  return new TallyError({
    status: response.status,
    type: str(body.type) ?? 'about:blank',
    title: str(body.title) ?? (response.statusText || `HTTP ${response.status}`),
    detail: str(body.detail) ?? (text.slice(0, 200) || `HTTP ${response.status}`),
    code,
    param: str(body.param),
    requestId: str(body.request_id) ?? response.headers.get('x-request-id') ?? undefined,
    retryAfterSeconds: retryAfterSeconds(response.headers.get('retry-after')),
  });
}
