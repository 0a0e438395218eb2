/**
 * Requests per key, per process: a token bucket per authenticated principal (an API key, the
 * operator key, an embed token's member) that refills at TALLY_RATE_LIMIT_PER_SECOND up to
 * TALLY_RATE_LIMIT_BURST. A request that finds the bucket empty is a 429 problem+json with
 * Retry-After (whole seconds until a token is back). 0 turns the limit off. Each process counts on
 * its own, so N processes behind a load balancer let a key through at up to N times the rate.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

interface Bucket {
  tokens: number;
  at: number;
}

/** Past this many buckets, full ones (keys idle long enough to refill) are dropped. */
const MAX_BUCKETS = 10_000;

export function rateLimitMiddleware(
  options: { perSecond: number; burst: number },
  now: () => number = () => performance.now(),
): MiddlewareHandler<AppEnv> {
  const { perSecond, burst } = options;
  if (perSecond <= 0) return (_c, next) => next();
  const buckets = new Map<string, Bucket>();
  const refill = (bucket: Bucket, at: number) => {
    bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) / 1000) * perSecond);
    bucket.at = at;
  };
  const prune = (at: number) => {
    for (const [key, bucket] of buckets) {
      refill(bucket, at);
      if (bucket.tokens >= burst) buckets.delete(key);
    }
  };
  return async (c, next) => {
    const principal = c.get('ctx')?.principal.id;
    if (!principal) return next();
    const at = now();
    let bucket = buckets.get(principal);
    if (!bucket) {
      if (buckets.size >= MAX_BUCKETS) prune(at);
      bucket = { tokens: burst, at };
      buckets.set(principal, bucket);
    } else {
      refill(bucket, at);
    }
    if (bucket.tokens < 1) {
      const seconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
      return problem(
        c,
        429,
        'rate_limited',
        `Too many requests for this key: at most ${perSecond} per second (bursts of ${burst}); retry in ${seconds} s`,
        undefined,
        { 'retry-after': String(seconds) },
      );
    }
    bucket.tokens -= 1;
    await next();
  };
}
