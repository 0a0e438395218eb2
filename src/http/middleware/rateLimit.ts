/**
 * Requests per key: a token bucket per key that refills at TALLY_RATE_LIMIT_PER_SECOND up to
 * TALLY_RATE_LIMIT_BURST; a request that finds it empty is refused with 429 and Retry-After (whole
 * seconds until a token is back). 0 turns the limit off. The /v1 API counts per authenticated
 * principal (an API key, the operator key, an embed token's member) and answers problem+json; the
 * gateway counts per key sent (a hash of it: the route authenticates later) and answers in the
 * provider's own error format.
 *
 * Across processes (a Postgres server; PGlite is one process): no request waits for the database.
 * Each process counts every request per key and second, and at most every SYNC_MS (started by a
 * request, in the background) adds its counts to shared rows and reads everyone's back. A key's
 * bucket in a process then gets the process's share of the key's requests over the last seconds
 * (its count / all processes' count): rate and burst times that share, so the buckets of all
 * processes add up to one limit. A key no process has counted recently gets 1 / (processes seen
 * in the last minute). The limit is exceeded only while shares are stale: see
 * docs/reliability.md for the bound and the measured overshoot.
 */
import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { newId } from '../../domain/ids.ts';
import { type GatewayProvider, isGatewayProvider, wireNamed } from '../../services/gateway/wires.ts';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

interface Bucket {
  tokens: number;
  at: number;
  /** This process's part of the key's limit, in (0, 1]. */
  share: number;
  /** When the share was last computed from shared counts (ms of `now`), or -Infinity. */
  sharedAt: number;
  /** The last request of the key here (ms of `now`): only keys in use are looked up when syncing. */
  usedAt: number;
}

/**
 * Past this many buckets, full ones (keys idle long enough to refill) are dropped, and if that is
 * not enough (more keys in use at once), the longest unused down to PRUNED_TO: memory stays bounded
 * whatever clients send, and a key dropped that way starts afresh.
 */
const MAX_BUCKETS = 10_000;
const PRUNED_TO = 9_000;
/** How often a process exchanges counts with the others. */
export const SYNC_MS = 250;
/**
 * Shares are computed over the two whole seconds that ended at least a second ago: every active
 * process has added those counts by then (it syncs every SYNC_MS), so all processes divide the
 * same figures and their shares add up to 1. Fresher, partial counts would favour each process's
 * own (it knows them before the others' arrive): measured, that let about 15 % too many through.
 */
const LOOKBACK_SECONDS = 2;
/** A process with no recent requests of a key still gets this much of it when they start. */
const MIN_SHARE = 0.05;
/**
 * Shared rows older than this are deleted (by whichever process syncs after CLEAN_EVERY_MS); a
 * process seen within it counts as live (idle or not) when a new key is divided.
 */
const KEEP_SECONDS = 60;
const CLEAN_EVERY_MS = 10_000;

export interface RateLimitOptions {
  perSecond: number;
  burst: number;
  /** The database every process shares; counts are exchanged only on a server. */
  shared?: Db | undefined;
  /**
   * This process's id in the shared rows, given when a second limiter of the process shares them
   * (processes are counted by id).
   */
  process?: string | undefined;
}

export type Taken = { ok: true } | { ok: false; retryAfterSeconds: number };

export class KeyRateLimiter {
  readonly process: string;
  private readonly buckets = new Map<string, Bucket>();
  /** Requests per key and epoch second not yet added to the shared rows. */
  private pending = new Map<string, Map<number, number>>();
  private syncing: Promise<void> | null = null;
  private lastSync = Number.NEGATIVE_INFINITY;
  private lastClean = 0;
  /** Processes that synced in the last minute, idle ones too (1 until this one has synced once). */
  private processes = 1;

  constructor(
    readonly options: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
    private readonly wallClock: () => number = () => Date.now(),
  ) {
    this.process = options.process ?? newId('wrk');
    // Announce this process at once, so that the others divide new keys by the right count.
    if (this.enabled && options.shared?.kind === 'server') this.startSync();
  }

  get enabled(): boolean {
    return this.options.perSecond > 0;
  }

  /** Takes one request of `key`; never waits for the database. */
  take(key: string): Taken {
    const { burst } = this.options;
    const at = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.prune(at);
      const share = 1 / this.processes;
      bucket = { tokens: burst * share, at, share, sharedAt: Number.NEGATIVE_INFINITY, usedAt: at };
      this.buckets.set(key, bucket);
    } else {
      this.refill(bucket, at);
      bucket.usedAt = at;
    }
    if (this.options.shared?.kind === 'server') {
      this.count(key);
      if (at - this.lastSync >= SYNC_MS && !this.syncing) this.startSync();
    }
    if (bucket.tokens < 1) return this.refusal(bucket);
    bucket.tokens -= 1;
    return { ok: true };
  }

  /** Gives back a request `take` counted that turned out not to count (a failure limit's success). */
  giveBack(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.options.burst * bucket.share, bucket.tokens + 1);
    const seconds = this.pending.get(key);
    const second = Math.floor(this.wallClock() / 1000);
    const counted = seconds?.get(second) ?? 0;
    if (counted > 0) seconds!.set(second, counted - 1);
  }

  private refusal(bucket: Bucket): Taken {
    const rate = this.options.perSecond * bucket.share;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) };
  }

  private startSync() {
    this.syncing = this.sync().finally(() => {
      this.syncing = null;
    });
  }

  /** Waits for a sync in progress (tests, shutdown). */
  async settled(): Promise<void> {
    await this.syncing;
  }

  private refill(bucket: Bucket, at: number) {
    const { perSecond, burst } = this.options;
    bucket.tokens = Math.min(
      burst * bucket.share,
      bucket.tokens + ((at - bucket.at) / 1000) * perSecond * bucket.share,
    );
    bucket.at = at;
  }

  private prune(at: number) {
    for (const [key, bucket] of this.buckets) {
      this.refill(bucket, at);
      if (bucket.tokens >= this.options.burst * bucket.share) this.buckets.delete(key);
    }
    if (this.buckets.size < PRUNED_TO) return;
    const byLastUse = [...this.buckets].sort(([, a], [, b]) => a.usedAt - b.usedAt);
    for (const [key] of byLastUse.slice(0, this.buckets.size - PRUNED_TO)) this.buckets.delete(key);
  }

  private count(key: string) {
    const second = Math.floor(this.wallClock() / 1000);
    let seconds = this.pending.get(key);
    if (!seconds) {
      seconds = new Map();
      this.pending.set(key, seconds);
    }
    seconds.set(second, (seconds.get(second) ?? 0) + 1);
  }

  /** Keys requested here within the seconds shares are computed over (and the one in progress). */
  private keysInUse(): string[] {
    const since = this.now() - (LOOKBACK_SECONDS + 2) * 1000;
    const keys: string[] = [];
    for (const [key, bucket] of this.buckets) if (bucket.usedAt >= since) keys.push(key);
    return keys;
  }

  /** Adds this process's counts to the shared rows, reads every process's, and resizes the buckets. */
  private async sync(): Promise<void> {
    const db = this.options.shared!;
    this.lastSync = this.now();
    const flushed = this.pending;
    this.pending = new Map();
    const keys: string[] = [];
    const seconds: number[] = [];
    const counts: number[] = [];
    for (const [key, bySecond] of flushed) {
      for (const [second, n] of bySecond) {
        keys.push(key);
        seconds.push(second);
        counts.push(n);
      }
    }
    const nowSecond = Math.floor(this.wallClock() / 1000);
    try {
      await db.query(
        `INSERT INTO tally_runtime.rate_limit_counts (bucket, second, process, requests)
         SELECT b, s, $1, n FROM unnest($2::text[], $3::bigint[], $4::int[]) AS u (b, s, n)
         ON CONFLICT (bucket, second, process)
           DO UPDATE SET requests = rate_limit_counts.requests + EXCLUDED.requests`,
        [this.process, keys, seconds, counts],
      );
      const rows = await db.query<{ bucket: string; mine: string; total: string; processes: number }>(
        `WITH beat AS (
           INSERT INTO tally_runtime.rate_limit_processes (process, seen_second) VALUES ($1, $3)
           ON CONFLICT (process) DO UPDATE SET seen_second = EXCLUDED.seen_second
         )
         SELECT c.bucket, coalesce(sum(c.requests) FILTER (WHERE c.process = $1), 0)::text AS mine,
                sum(c.requests)::text AS total, 0 AS processes
           FROM tally_runtime.rate_limit_counts c
          WHERE c.bucket = ANY($2::text[]) AND c.second >= $3::bigint - 1 - $4 AND c.second < $3::bigint - 1
          GROUP BY c.bucket
         UNION ALL
         SELECT '', '0', '0', count(*)::int FROM tally_runtime.rate_limit_processes
          WHERE seen_second >= $5 AND process <> $1`,
        [this.process, this.keysInUse(), nowSecond, LOOKBACK_SECONDS, nowSecond - KEEP_SECONDS],
      );
      const at = this.now();
      for (const row of rows) {
        if (row.bucket === '') {
          this.processes = row.processes + 1;
          continue;
        }
        const bucket = this.buckets.get(row.bucket);
        const total = Number(row.total);
        if (!bucket || total <= 0) continue;
        this.refill(bucket, at);
        bucket.share = Math.min(1, Math.max(Number(row.mine) / total, MIN_SHARE));
        bucket.sharedAt = at;
        bucket.tokens = Math.min(bucket.tokens, this.options.burst * bucket.share);
      }
      // A key no process counted lately: an equal part per live process.
      for (const bucket of this.buckets.values()) {
        if (at - bucket.sharedAt > (LOOKBACK_SECONDS + 1) * 1000) {
          this.refill(bucket, at);
          bucket.share = 1 / this.processes;
          bucket.tokens = Math.min(bucket.tokens, this.options.burst * bucket.share);
        }
      }
      if (at - this.lastClean > CLEAN_EVERY_MS) {
        this.lastClean = at;
        await db.query('DELETE FROM tally_runtime.rate_limit_counts WHERE second < $1', [
          nowSecond - KEEP_SECONDS,
        ]);
        await db.query('DELETE FROM tally_runtime.rate_limit_processes WHERE seen_second < $1', [
          nowSecond - KEEP_SECONDS,
        ]);
      }
    } catch {
      // The database is away (it answers 503 elsewhere): the counts go again with the next sync
      // (those of the last minute: older ones no longer matter), and each process limits with the
      // shares it last knew meanwhile.
      for (const [key, bySecond] of flushed) {
        for (const [second, n] of bySecond) {
          if (second < nowSecond - KEEP_SECONDS) continue;
          let mine = this.pending.get(key);
          if (!mine) {
            mine = new Map();
            this.pending.set(key, mine);
          }
          mine.set(second, (mine.get(second) ?? 0) + n);
        }
      }
    }
  }
}

/** The /v1 API: per authenticated principal, refused with problem+json. */
export function rateLimitMiddleware(limiter: KeyRateLimiter): MiddlewareHandler<AppEnv> {
  if (!limiter.enabled) return (_c, next) => next();
  const { perSecond, burst } = limiter.options;
  return async (c, next) => {
    const principal = c.get('ctx')?.principal.id;
    if (!principal) return next();
    const taken = limiter.take(principal);
    if (!taken.ok) {
      return problem(
        c,
        429,
        'rate_limited',
        `Too many requests for this key: at most ${perSecond} per second (bursts of ${burst}); retry in ${taken.retryAfterSeconds} s`,
        undefined,
        { 'retry-after': String(taken.retryAfterSeconds) },
      );
    }
    await next();
  };
}

/** The gateway's 429 in each provider's own format, so the provider SDK raises its rate-limit error. */
const GATEWAY_REFUSALS = {
  openai: (message: string) => ({
    error: { message, type: 'requests', param: null, code: 'rate_limit_exceeded' },
  }),
  anthropic: (message: string) => ({ type: 'error', error: { type: 'rate_limit_error', message } }),
};

/** The provider a gateway request names and the key it sends in that provider's header, if both. */
export function gatewayKeySent(c: Context): { provider: GatewayProvider; secret: string } | undefined {
  const provider = c.req.path.split('/')[2] ?? '';
  if (!isGatewayProvider(provider)) return undefined;
  const secret = wireNamed(provider)!.clientSecret(c.req.raw.headers);
  return secret ? { provider, secret } : undefined;
}

export function gatewayRefusal(
  c: Context,
  provider: GatewayProvider,
  message: string,
  retryAfterSeconds: number,
): Response {
  return c.json(GATEWAY_REFUSALS[provider](message), 429, { 'retry-after': String(retryAfterSeconds) });
}

/**
 * The gateway: per key sent, in the header the provider's SDK uses. The bucket is named by a
 * hash of the key (never the key itself); requests without a key pass on to be refused as such.
 */
export function gatewayRateLimitMiddleware(limiter: KeyRateLimiter): MiddlewareHandler<AppEnv> {
  if (!limiter.enabled) return (_c, next) => next();
  const { perSecond, burst } = limiter.options;
  return async (c: Context<AppEnv>, next) => {
    const sent = gatewayKeySent(c);
    if (!sent) return next();
    const bucket = `gw:${createHash('sha256').update(`rate-limit:${sent.secret}`).digest('base64url').slice(0, 24)}`;
    const taken = limiter.take(bucket);
    if (!taken.ok) {
      const message = `Too many requests for this key: at most ${perSecond} per second (bursts of ${burst}); retry in ${taken.retryAfterSeconds} s`;
      return gatewayRefusal(c, sent.provider, message, taken.retryAfterSeconds);
    }
    await next();
  };
}
