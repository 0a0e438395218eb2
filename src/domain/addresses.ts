/**
 * Which IP addresses are not public: loopback, private, link-local, shared (CGNAT), multicast,
 * reserved. Webhooks may only reach public ones (SSRF), and only a non-public peer may speak for a
 * client's address (a reverse proxy's X-Forwarded-For).
 */
import { BlockList, isIP } from 'node:net';

export type AddressKind =
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
  // NAT64 for a local network (RFC 8215): its translator's, but the IPv4 host behind it may be anywhere.
  ['reserved', '64:ff9b:1::/48'],
  // Teredo: reached through a relay at an IPv4 address it carries obfuscated, never a webhook host.
  ['reserved', '2001::/32'],
  ['reserved', '2001:db8::/32'], // documentation
  ['reserved', '100::/64'], // discard-only
];

/** One BlockList per kind, in the order above. */
const REFUSED_LISTS = new Map<AddressKind, BlockList>();
for (const [kind, range] of REFUSED_RANGES) {
  const [network = '', prefix] = range.split('/');
  const list = REFUSED_LISTS.get(kind) ?? REFUSED_LISTS.set(kind, new BlockList()).get(kind)!;
  list.addSubnet(network, Number(prefix), isIP(network) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * IPv6 prefixes that carry an IPv4 address, with the group where it starts: the address reached is
 * that IPv4 one (NAT64's 64:ff9b::/96, 6to4's 2002::/16, SIIT's IPv4-translated ::ffff:0:0:0/96).
 */
const CARRIERS: { prefix: string; bits: number; at: number }[] = [
  { prefix: '64:ff9b::', bits: 96, at: 6 },
  { prefix: '2002::', bits: 16, at: 1 },
  { prefix: '::ffff:0:0:0', bits: 96, at: 6 },
];
const CARRIER_LISTS = CARRIERS.map((c) => {
  const list = new BlockList();
  list.addSubnet(c.prefix, c.bits, 'ipv6');
  return { list, at: c.at };
});

/** The 8 groups of an IPv6 address, as numbers (an IPv4 tail read as its two groups). */
function ipv6Groups(ip: string): number[] {
  const v4 = ip.match(/^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  const text = v4
    ? `${v4[1]}${((Number(v4[2]) << 8) | Number(v4[3])).toString(16)}:${((Number(v4[4]) << 8) | Number(v4[5])).toString(16)}`
    : ip;
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => Number.parseInt(g, 16));
}

/** The refused range an address itself is in (an IPv4-mapped one as its IPv4 address), if any. */
function rangeKind(ip: string): AddressKind | null {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  for (const [kind, list] of REFUSED_LISTS) if (list.check(ip, family)) return kind;
  return null;
}

/** The kind of a non-public IP address, or of the IPv4 address an IPv6 one carries; null for a public one. */
export function nonPublicKind(ip: string): AddressKind | null {
  const kind = rangeKind(ip);
  if (kind || isIP(ip) !== 6) return kind;
  const carrier = CARRIER_LISTS.find((c) => c.list.check(ip, 'ipv6'));
  if (!carrier) return null;
  const groups = ipv6Groups(ip.split('%')[0]!);
  const [high = 0, low = 0] = groups.slice(carrier.at, carrier.at + 2);
  return nonPublicKind(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
}

/** Kinds of address a host of Tally's own network (a reverse proxy in front of it) can have. */
const INTERNAL_KINDS = new Set<AddressKind | null>(['loopback', 'private', 'link-local', 'shared (CGNAT)']);

/**
 * Whether an address is in a local network: not public, and not reserved either (Teredo clients,
 * for one, come from anywhere on the internet), nor multicast or unspecified, which no peer has.
 * Judged on the address itself: a 6to4 or NAT64 address comes through a relay or a translator,
 * from wherever the IPv4 address it carries is, so carrying a private one makes it no neighbour.
 */
export const isInternalAddress = (ip: string): boolean => INTERNAL_KINDS.has(rangeKind(ip));
