/**
 * Where webhooks may be sent. A tenant chooses the URL and reads the delivery log, so a delivery to
 * any address would let it reach Tally's own network (cloud metadata at 169.254.169.254, the
 * database, admin ports) and learn what answers there (SSRF). Only public addresses are allowed,
 * unless the operator sets TALLY_WEBHOOK_ALLOW_PRIVATE=1 (development, tests).
 */
import { lookup as dnsLookup } from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { nonPublicKind } from '../../domain/addresses.ts';

/** A delivery refused by the address rule: a setting of the tenant's to change, not an outage. */
export class AddressNotAllowedError extends Error {
  constructor(why: string) {
    super(`address not allowed: ${why}`);
  }
}

/** A URL's host as connected to: IPv4 dotted (URL parsing rewrites 0x7f.1, 2130706433), IPv6 unbracketed. */
const hostOf = (url: string): string => new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');

/** Why a URL's host, a literal IP in a refused range, is refused; null for a name or a public IP. */
export function refusedLiteralIp(url: string): string | null {
  const host = hostOf(url);
  const kind = isIP(host) ? nonPublicKind(host) : null;
  return kind && `${host} is a ${kind} address`;
}

/** How long the check at creation waits for a name to resolve (a request waits for it). */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * Why a webhook URL is refused, its host resolved: a literal IP in a refused range, a localhost
 * name (RFC 6761: always loopback), a name that does not resolve (within `timeoutMs`), or a name
 * with any non-public address among all it resolves to; null when every address is public.
 */
export async function refusedTarget(url: string, timeoutMs = LOOKUP_TIMEOUT_MS): Promise<string | null> {
  const host = hostOf(url);
  if (/(^|\.)localhost\.?$/.test(host)) return `${host} is a loopback name`;
  if (isIP(host)) return refusedLiteralIp(url);
  let addresses: { address: string }[];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const answer = await Promise.race([dnsPromises.lookup(host, { all: true }), timeout]);
    if (answer === 'timeout') {
      return `${host} did not resolve within ${timeoutMs / 1000} s (its name servers may be down: try again later)`;
    }
    addresses = answer;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    // getaddrinfo's answer that may differ on the next try: the name servers failed, not the name.
    return code === 'EAI_AGAIN'
      ? `${host} could not be resolved now (${code}: its name servers failed; try again later)`
      : `${host} did not resolve (${code})`;
  } finally {
    clearTimeout(timer);
  }
  for (const { address } of addresses) {
    const kind = nonPublicKind(address);
    if (kind) return `${host} resolves to ${address}, a ${kind} address`;
  }
  return null;
}

/**
 * dns.lookup that fails when the name resolves to any refused address. The connection is made to
 * the address checked here, so a name that answers a public address to one lookup and a private
 * one to the next (DNS rebinding) cannot slip between a check and the connect.
 */
const publicAddressLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const kind = addresses.map((a) => nonPublicKind(a.address)).find((k) => k !== null);
    if (kind) return callback(new AddressNotAllowedError(`resolves to a ${kind} address`), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

/**
 * Connection pools that connect to public addresses only. A literal IP host is connected to
 * without any lookup, so senders check it with refusedLiteralIp first.
 */
export const PUBLIC_ONLY_AGENTS = {
  'http:': new HttpAgent({ keepAlive: true, lookup: publicAddressLookup }),
  'https:': new HttpsAgent({ keepAlive: true, lookup: publicAddressLookup }),
};
