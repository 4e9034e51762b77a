/**
 * CIDR maths for the ServiceCIDR controller: parsing IP addresses and prefixes and asking
 * containment and overlap questions. Pure functions, no Kubernetes objects.
 *
 * Parsing goes through ipaddr.js but is held to what Go's net/netip accepts, because the
 * apiserver (Go) is what decided these strings were valid: IPv4 only as four decimal parts
 * without leading zeros (ipaddr.js alone would take "10", "0x0a.0.0.1" or "010.0.0.1"), no
 * IPv6 zones, and "::a.b.c.d" meaning ::0102:0304 rather than ipaddr.js's ::ffff:a.b.c.d.
 * Values are bigints so IPv4 and IPv6 share one code path.
 */
import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

export interface Address {
  family: IPFamily;
  value: bigint;
}

/** A prefix held in canonical form: `network` has every host bit cleared. */
export interface Prefix {
  family: IPFamily;
  network: bigint;
  bits: number;
}

const WIDTH: Record<IPFamily, number> = { IPv4: 32, IPv6: 128 };

const FOUR_PART_DECIMAL = /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/;
// Go rejects IPv6 groups longer than four hex digits; ipaddr.js only checks the value.
const LONG_HEX_GROUP = /(^|:)[0-9a-f]{5,}(?=:|$)/i;
const EMBEDDED_IPV4 = /:(\d+\.\d+\.\d+\.\d+)$/;

function bytesToBigInt(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function parseIPv4(s: string): Address | undefined {
  if (!FOUR_PART_DECIMAL.test(s) || !ipaddr.IPv4.isValid(s)) return undefined;
  return { family: 'IPv4', value: bytesToBigInt(ipaddr.IPv4.parse(s).toByteArray()) };
}

function parseIPv6(s: string): Address | undefined {
  if (s.includes('%') || LONG_HEX_GROUP.test(s)) return undefined;
  const embedded = EMBEDDED_IPV4.exec(s);
  if (embedded && !FOUR_PART_DECIMAL.test(embedded[1]!)) return undefined;
  // ipaddr.js reads "::a.b.c.d" as the IPv4-mapped ::ffff:a.b.c.d; Go reads it as ::a.b.c.d
  // (the deprecated IPv4-compatible form). Spell out a zero group so both agree.
  const text = /^::\d+\.\d+\.\d+\.\d+$/.test(s) ? `::0:${s.slice(2)}` : s;
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  return { family: 'IPv6', value: bytesToBigInt(ipaddr.IPv6.parse(text).toByteArray()) };
}

/** Parses an IP address the way Go's netip.ParseAddr would; undefined when it is not one. */
export function parseAddress(s: string): Address | undefined {
  if (typeof s !== 'string' || s === '') return undefined;
  return s.includes(':') ? parseIPv6(s) : parseIPv4(s);
}

/** Parses "addr/bits"; the address need not be canonical, the result is masked. */
export function parsePrefix(s: string): Prefix | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.lastIndexOf('/');
  if (slash < 0) return undefined;
  const bitsText = s.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(bitsText)) return undefined;
  const addr = parseAddress(s.slice(0, slash));
  if (!addr) return undefined;
  const bits = Number(bitsText);
  if (bits > WIDTH[addr.family]) return undefined;
  return { family: addr.family, network: addr.value & networkMask(addr.family, bits), bits };
}

/** The IP family of a CIDR string, or undefined when it does not parse. */
export function familyOfCIDR(s: string): IPFamily | undefined {
  return parsePrefix(s)?.family;
}

function networkMask(family: IPFamily, bits: number): bigint {
  const width = BigInt(WIDTH[family]);
  const all = (1n << width) - 1n;
  return (all >> BigInt(bits)) ^ all;
}

function hostMask(family: IPFamily, bits: number): bigint {
  return ((1n << BigInt(WIDTH[family])) - 1n) >> BigInt(bits);
}

/** The lowest address of the prefix. */
export function networkAddress(p: Prefix): bigint {
  return p.network;
}

/** The highest address of the prefix (the IPv4 broadcast address; all ones in IPv6). */
export function lastAddress(p: Prefix): bigint {
  return p.network | hostMask(p.family, p.bits);
}

/** Plain membership: the address lies inside the prefix (same family). */
function inPrefix(p: Prefix, a: Address): boolean {
  return p.family === a.family && (a.value & networkMask(p.family, p.bits)) === p.network;
}

/**
 * Whether a Service IP could have been allocated from this prefix: inside it, but not its
 * network address (either family) nor, for IPv4, its broadcast address, since the
 * allocator never hands those out. The IPv6 all-ones address is allocatable, so it counts.
 */
export function prefixContainsAddress(p: Prefix, a: Address): boolean {
  if (!inPrefix(p, a)) return false;
  if (a.value === networkAddress(p)) return false;
  if (p.family === 'IPv4' && a.value === lastAddress(p)) return false;
  return true;
}

/** Whether the two prefixes share any address (one contains the other, or they are equal). */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const bits = Math.min(a.bits, b.bits);
  const mask = networkMask(a.family, bits);
  return (a.network & mask) === (b.network & mask);
}

/** Whether `parent` covers all of `child`: same or shorter prefix, and they overlap. */
export function prefixContainsPrefix(parent: Prefix, child: Prefix): boolean {
  return parent.bits <= child.bits && prefixesOverlap(parent, child);
}
