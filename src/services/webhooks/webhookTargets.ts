/**
 * Where webhooks may be sent. A tenant chooses the URL and reads the delivery log, so a delivery to
 * any address would let it reach Tally's own network (cloud metadata at 169.254.169.254, the
 * database, admin ports) and learn what answers there (SSRF). Only public addresses are allowed,
 * unless the operator sets TALLY_WEBHOOK_ALLOW_PRIVATE=1 (development, tests).
 */
import { lookup as dnsLookup } from 'node:dns';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

type AddressKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'shared (CGNAT)'
  | 'multicast'
  | 'reserved';

/**
 * The refused ranges, named. `::1` and `::` are named before `::/96` (reserved) takes them. A
 * BlockList's IPv4 ranges also match their IPv4-mapped IPv6 forms (`::ffff:127.0.0.1`).
 */
const REFUSED_RANGES: [AddressKind, string][] = [
  ['unspecified', '0.0.0.0/8'],
  ['unspecified', '::/128'],
  ['loopback', '127.0.0.0/8'],
  ['loopback', '::1/128'],
  ['private', '10.0.0.0/8'], // RFC 1918
  ['private', '172.16.0.0/12'],
  ['private', '192.168.0.0/16'],
  ['private', 'fc00::/7'], // IPv6 unique local
  ['private', 'fec0::/10'], // IPv6 site-local (deprecated)
  ['link-local', '169.254.0.0/16'],
  ['link-local', 'fe80::/10'],
  ['shared (CGNAT)', '100.64.0.0/10'],
  ['multicast', '224.0.0.0/4'],
  ['multicast', 'ff00::/8'],
  ['reserved', '192.0.0.0/24'], // IETF protocol assignments
  ['reserved', '198.18.0.0/15'], // benchmarking
  ['reserved', '240.0.0.0/4'], // with 255.255.255.255, the broadcast address
  ['reserved', '::/96'], // IPv4-compatible IPv6 (deprecated)
];

/** One BlockList per kind, in the order above. */
const REFUSED_LISTS = new Map<AddressKind, BlockList>();
for (const [kind, range] of REFUSED_RANGES) {
  const [network = '', prefix] = range.split('/');
  const list = REFUSED_LISTS.get(kind) ?? REFUSED_LISTS.set(kind, new BlockList()).get(kind)!;
  list.addSubnet(network, Number(prefix), isIP(network) === 6 ? 'ipv6' : 'ipv4');
}

/** The kind of a refused IP address; null for a public one. */
export function refusedAddressKind(ip: string): AddressKind | null {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  for (const [kind, list] of REFUSED_LISTS) if (list.check(ip, family)) return kind;
  return null;
}

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
  const kind = isIP(host) ? refusedAddressKind(host) : null;
  return kind && `${host} is a ${kind} address`;
}

/**
 * Why a webhook URL is refused before any DNS lookup: a literal IP in a refused range, or a
 * localhost name (RFC 6761: always loopback); null when only resolving the name can tell.
 */
export function refusedHost(url: string): string | null {
  const host = hostOf(url);
  return /(^|\.)localhost\.?$/.test(host) ? `${host} is a loopback name` : refusedLiteralIp(url);
}

/**
 * dns.lookup that fails when the name resolves to any refused address. The connection is made to
 * the address checked here, so a name that answers a public address to one lookup and a private
 * one to the next (DNS rebinding) cannot slip between a check and the connect.
 */
const publicAddressLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const kind = addresses.map((a) => refusedAddressKind(a.address)).find((k) => k !== null);
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
