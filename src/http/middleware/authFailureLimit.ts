/**
 * Failed authentications per client address. The request limit counts per authenticated key, so
 * it never sees a key that fails, and every failing key costs a database lookup: a client guessing
 * keys, or retrying a revoked one, would be limited by nothing. Here an address that has failed
 * AUTH_FAILURE_BURST times is answered 429 with Retry-After on every request that presents
 * credentials, before they are looked up, until its failures refill at AUTH_FAILURES_PER_SECOND.
 * A good key never seen here is refused too (telling it from a bad one takes the very lookup the
 * refusal saves); one that authenticated lately passes (FailureLimit). Other addresses are not
 * affected, and a request without credentials (refused without a lookup) is never counted here.
 *
 * The address is the socket's peer, or behind TALLY_TRUSTED_PROXIES reverse proxies the address
 * the farthest of them saw. Behind a proxy not declared so, all clients share the proxy's address
 * and this budget.
 */
import { isIP } from 'node:net';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { isInternalAddress } from '../../domain/addresses.ts';
import { hashSecret } from '../../domain/ids.ts';
import { bearerToken } from '../../services/keys/authenticate.ts';
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
 * The address a proxy wrote, as the client's: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
 * `[2001:db8::1]:443`; undefined for anything that is no IP address.
 */
function forwardedAddress(hop: string): string | undefined {
  const bracketed = hop.match(/^\[([^\]]+)\](?::\d+)?$/)?.[1];
  const address = bracketed ?? (/^[\d.]+:\d+$/.test(hop) ? hop.slice(0, hop.lastIndexOf(':')) : hop);
  return isIP(address) ? address : undefined;
}

/**
 * The socket's peer, or behind `trustedProxies` reverse proxies the address the farthest of them
 * saw: each proxy appends its own peer to X-Forwarded-For, so that one is `trustedProxies` from the
 * right (anything left of it was written by the client). Only a peer on an internal address (a
 * proxy in Tally's own network: isInternalAddress) is believed: a client reaching Tally directly
 * could otherwise name any address. A header shorter than that, or not naming an address there,
 * leaves the peer. None for a request made in process (app.request): it has no socket.
 */
export function clientAddress(c: Context, trustedProxies: number): string | undefined {
  const peer = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket.remoteAddress;
  if (!peer || trustedProxies === 0 || !isInternalAddress(peer)) return peer;
  const hops = (c.req.header('x-forwarded-for') ?? '')
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '');
  const hop = hops.length >= trustedProxies ? hops[hops.length - trustedProxies] : undefined;
  return (hop && forwardedAddress(hop)) ?? peer;
}

/** How long a process trusts a credential that authenticated, and how many it keeps. */
const TRUSTED_FOR_MS = 10 * 60_000;
const MAX_TRUSTED = 10_000;

/**
 * Failed authentications counted per client address (`failures`, behind `trustedProxies`), and
 * the credentials that authenticated lately in this process, by hash: those pass an address that
 * others' failures got refused. So a client retrying a revoked key (or guessing) behind a shared
 * address (a NAT, an undeclared proxy) does not lock out every tenant behind it. Each success
 * renews the trust; a trusted key that fails (revoked since, expired) loses it and counts.
 */
export class FailureLimit {
  /** Credential hash and until when it is trusted, oldest first (a renewal moves it to the end). */
  private readonly trusted = new Map<string, number>();
  /** Requests in flight per credential hash not trusted yet: its one lookup is under way. */
  private readonly unproven = new Map<string, number>();

  constructor(
    readonly failures: KeyRateLimiter,
    readonly trustedProxies: number,
  ) {}

  isTrusted(hash: string, now = Date.now()): boolean {
    const until = this.trusted.get(hash);
    return until !== undefined && until > now;
  }

  /** Trusted for TRUSTED_FOR_MS from now; past MAX_TRUSTED the longest unrenewed goes. */
  trust(hash: string, now = Date.now()): void {
    this.trusted.delete(hash);
    if (this.trusted.size >= MAX_TRUSTED) this.trusted.delete(this.trusted.keys().next().value!);
    this.trusted.set(hash, now + TRUSTED_FOR_MS);
  }

  distrust(hash: string): void {
    this.trusted.delete(hash);
  }

  /** Counts a request of an unproven credential in; true when it is the first in flight. */
  enter(hash: string): boolean {
    const inFlight = this.unproven.get(hash) ?? 0;
    this.unproven.set(hash, inFlight + 1);
    return inFlight === 0;
  }

  leave(hash: string): void {
    const inFlight = (this.unproven.get(hash) ?? 1) - 1;
    if (inFlight > 0) this.unproven.set(hash, inFlight);
    else this.unproven.delete(hash);
  }
}

function limitFailures(
  limit: FailureLimit,
  credentialOf: (c: Context<AppEnv>) => string | undefined,
  refuse: (c: Context<AppEnv>, message: string, retryAfterSeconds: number) => Response,
): MiddlewareHandler<AppEnv> {
  const { failures, trustedProxies } = limit;
  if (!failures.enabled) return (_c, next) => next();
  return async (c, next) => {
    const credential = credentialOf(c);
    const address = credential === undefined ? undefined : clientAddress(c, trustedProxies);
    if (credential === undefined || address === undefined) return next();
    const bucket = addressBucket(address);
    const hash = hashSecret(credential);
    const trusted = limit.isTrusted(hash);
    // A credential not trusted takes a failure before its lookup, given back once it succeeds:
    // lookups in flight from one address never outnumber the failures it has left. Requests with
    // the same credential share its lookup (authentication reads a key once for all of them), so
    // only the first in flight takes one: a new tenant's burst of one key is not refused.
    let taker = false;
    if (!trusted) {
      taker = limit.enter(hash);
      const taken = taker ? failures.take(bucket) : { ok: true as const };
      if (!taken.ok) {
        limit.leave(hash);
        const message = `Too many failed authentications from this address (at most ${AUTH_FAILURE_BURST}, then ${AUTH_FAILURES_PER_SECOND} per second); retry in ${taken.retryAfterSeconds} s`;
        return refuse(c, message, taken.retryAfterSeconds);
      }
    }
    try {
      await next();
    } finally {
      if (!trusted) limit.leave(hash);
    }
    // Authentication sets the principal (ctx) once it succeeds: a 401 without one is its refusal.
    const failed = c.res.status === 401 && !c.get('ctx');
    if (c.get('ctx')) limit.trust(hash);
    if (taker && !failed) failures.giveBack(bucket);
    // Trusted, then refused (revoked, expired): it counts from now on like any other.
    if (trusted && failed) {
      limit.distrust(hash);
      failures.take(bucket);
    }
  };
}

/** /v1, in front of authMiddleware: any Authorization header counts as credentials; problem+json. */
export const authFailureLimitMiddleware = (limit: FailureLimit) =>
  limitFailures(
    limit,
    // The key as authentication reads it (one key, however its header is spaced); else the header.
    (c) => {
      const header = c.req.header('authorization');
      return header === undefined ? undefined : (bearerToken(header) ?? header);
    },
    (c, message, retryAfterSeconds) =>
      problem(c, 429, 'too_many_failed_authentications', message, undefined, {
        'retry-after': String(retryAfterSeconds),
      }),
  );

/** The gateway, in front of its routes: the key in the provider's header; the provider's 429. */
export const gatewayAuthFailureLimitMiddleware = (limit: FailureLimit) =>
  limitFailures(
    limit,
    (c) => gatewayKeySent(c)?.secret,
    (c, message, retryAfterSeconds) =>
      gatewayRefusal(c, gatewayKeySent(c)!.provider, message, retryAfterSeconds),
  );
