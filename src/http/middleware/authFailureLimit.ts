/**
 * Failed authentications per client address. The request limit counts per authenticated key, so
 * it never sees a key that fails, and every failing key costs a database lookup: a client guessing
 * keys, or retrying a revoked one, would be limited by nothing. Here an address that has failed
 * AUTH_FAILURE_BURST times is answered 429 with Retry-After on every request that presents
 * credentials, before they are looked up, until its failures refill at AUTH_FAILURES_PER_SECOND.
 * A good key from that address is refused too: telling it from a bad one takes the very lookup
 * the refusal saves. Other addresses are not affected, and a request without credentials
 * (refused without a lookup) is never counted or refused here.
 *
 * The address is the socket's peer, or behind TALLY_TRUSTED_PROXIES reverse proxies the address
 * the farthest of them saw. Behind a proxy not declared so, all clients share the proxy's address
 * and this budget.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';
import { gatewayKeySent, gatewayRefusal, KeyRateLimiter } from './rateLimit.ts';

/**
 * A client with a mistyped or revoked key learns so in a few tries, and several clients behind one
 * NAT may fail at once: 20 leaves them room. Past it, one lookup a second per address makes
 * guessing useless and costs the database nothing worth measuring.
 */
const AUTH_FAILURE_BURST = 20;
const AUTH_FAILURES_PER_SECOND = 1;

/**
 * Beside the request limiter `requests`: off when it is off (TALLY_RATE_LIMIT_PER_SECOND=0), and
 * sharing counts across processes under its process id, so that each process is counted once.
 */
export function authFailureLimiter(requests: KeyRateLimiter): KeyRateLimiter {
  return new KeyRateLimiter({
    perSecond: requests.enabled ? AUTH_FAILURES_PER_SECOND : 0,
    burst: AUTH_FAILURE_BURST,
    shared: requests.options.shared,
    process: requests.process,
  });
}

/**
 * The bucket of a client address: an IPv4 address (also as an IPv6 socket maps it) its own, an
 * IPv6 address its /64, the block one subscriber gets and may pick addresses from at will.
 */
export function addressBucket(address: string): string {
  const ipv4 = address.match(/^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i)?.[1];
  if (ipv4) return `addr:${ipv4}`;
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
  const prefix = [...left, ...zeros, ...right]
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16));
  return `addr:${prefix.join(':')}::/64`;
}

/**
 * The socket's peer, or behind `trustedProxies` reverse proxies the address the farthest of them
 * saw: each proxy appends its own peer to X-Forwarded-For, so that one is `trustedProxies` from the
 * right (anything left of it was written by the client). A header shorter than that did not pass
 * every proxy: the peer is used. None for a request made in process (app.request): no socket.
 */
export function clientAddress(c: Context, trustedProxies: number): string | undefined {
  const peer = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket.remoteAddress;
  if (!peer || trustedProxies === 0) return peer;
  const forwarded = (c.req.header('x-forwarded-for') ?? '')
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '');
  return forwarded.length >= trustedProxies ? forwarded[forwarded.length - trustedProxies] : peer;
}

/** Failed authentications counted per client address; `trustedProxies` is TALLY_TRUSTED_PROXIES. */
export interface FailureLimit {
  failures: KeyRateLimiter;
  trustedProxies: number;
}

function limitFailures(
  { failures, trustedProxies }: FailureLimit,
  presentsCredentials: (c: Context<AppEnv>) => boolean,
  refuse: (c: Context<AppEnv>, message: string, retryAfterSeconds: number) => Response,
): MiddlewareHandler<AppEnv> {
  if (!failures.enabled) return (_c, next) => next();
  return async (c, next) => {
    const address = presentsCredentials(c) ? clientAddress(c, trustedProxies) : undefined;
    if (!address) return next();
    const bucket = addressBucket(address);
    const blocked = failures.check(bucket);
    if (!blocked.ok) {
      const message = `Too many failed authentications from this address (at most ${AUTH_FAILURE_BURST}, then ${AUTH_FAILURES_PER_SECOND} per second); retry in ${blocked.retryAfterSeconds} s`;
      return refuse(c, message, blocked.retryAfterSeconds);
    }
    await next();
    // Authentication sets the principal (ctx) once it succeeds: a 401 without one is its refusal.
    if (c.res.status === 401 && !c.get('ctx')) failures.take(bucket);
  };
}

/** /v1, in front of authMiddleware: any Authorization header counts as credentials; problem+json. */
export const authFailureLimitMiddleware = (limit: FailureLimit) =>
  limitFailures(
    limit,
    (c) => c.req.header('authorization') !== undefined,
    (c, message, retryAfterSeconds) =>
      problem(c, 429, 'too_many_failed_authentications', message, undefined, {
        'retry-after': String(retryAfterSeconds),
      }),
  );

/** The gateway, in front of its routes: the key in the provider's header; the provider's 429. */
export const gatewayAuthFailureLimitMiddleware = (limit: FailureLimit) =>
  limitFailures(
    limit,
    (c) => gatewayKeySent(c) !== undefined,
    (c, message, retryAfterSeconds) =>
      gatewayRefusal(c, gatewayKeySent(c)!.provider, message, retryAfterSeconds),
  );
