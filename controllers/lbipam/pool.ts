/**
 * Pool address maths for service-lb-ipam-controller: IPs as bigints, pool entries (CIDRs and
 * `A-B` ranges, IPv4 or IPv6) as inclusive ranges, overlap detection, sizes and the lowest
 * free address. Nothing here enumerates a range: a /64 costs as much as a /30.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 'IPv4' | 'IPv6';

/** An inclusive range of addresses of one family. */
export interface AddressRange {
  family: Family;
  start: bigint;
  end: bigint;
  /** The pool entry it came from, for messages. */
  source: string;
}

const BITS: Record<Family, number> = { IPv4: 32, IPv6: 128 };

/** An IP as family + integer, or undefined when `text` is not an IP (IPv4-mapped IPv6 is refused). */
export function parseIP(text: string): { family: Family; value: bigint } | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.').map(Number);
    // node:net accepts only dotted-quads without leading zeros, so each part is 0..255.
    return { family: 'IPv4', value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!isIPv6(text) || text.includes('%') || text.includes('.')) return undefined;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  return { family: 'IPv6', value: groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n) };
}

/** The canonical text of an IP (RFC 5952 for IPv6), as the apiserver requires for IPAddress names. */
export function formatIP(family: Family, value: bigint): string {
  if (family === 'IPv4') return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join('.');
  const groups = [...Array(8).keys()].map((i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups (the first one on a tie) becomes '::'.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** The canonical form of an IP given as text, or undefined when it is not one. */
export function canonicalIP(text: string): string | undefined {
  const ip = parseIP(text.trim());
  return ip && formatIP(ip.family, ip.value);
}

/** One pool entry: `10.0.0.0/30` (all 4 addresses, network and broadcast included) or `A-B`. */
export function parseEntry(entry: string): AddressRange {
  const text = entry.trim();
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const ip = parseIP(text.slice(0, slash));
    const lenText = text.slice(slash + 1);
    if (!ip) throw new Error(`"${entry}": ${text.slice(0, slash)} is not an IP address`);
    const bits = BITS[ip.family];
    const len = Number(lenText);
    if (!/^\d{1,3}$/.test(lenText) || len > bits)
      throw new Error(`"${entry}": prefix length must be 0..${bits}`);
    const hostBits = BigInt(bits - len);
    const mask = (1n << hostBits) - 1n;
    if ((ip.value & mask) !== 0n)
      throw new Error(
        `"${entry}": host bits are set (did you mean ${formatIP(ip.family, ip.value & ~mask)}/${len}?)`,
      );
    return { family: ip.family, start: ip.value, end: ip.value | mask, source: text };
  }
  const dash = text.indexOf('-');
  if (dash < 0) throw new Error(`"${entry}": neither a CIDR (a.b.c.d/n) nor a range (A-B)`);
  const a = parseIP(text.slice(0, dash).trim());
  const b = parseIP(text.slice(dash + 1).trim());
  if (!a || !b) throw new Error(`"${entry}": both ends of a range must be IP addresses`);
  if (a.family !== b.family) throw new Error(`"${entry}": the range mixes IPv4 and IPv6`);
  if (a.value > b.value) throw new Error(`"${entry}": the range's start is after its end`);
  return { family: a.family, start: a.value, end: b.value, source: text };
}

/** A pool's parsed addresses: the ranges that parsed, and a message per entry that did not. */
export interface ParsedPool {
  ranges: AddressRange[];
  errors: string[];
}

export function parsePoolAddresses(addresses: readonly string[] | undefined): ParsedPool {
  const ranges: AddressRange[] = [];
  const errors: string[] = [];
  if (!addresses || addresses.length === 0) errors.push('spec.addresses is empty');
  for (const entry of addresses ?? []) {
    try {
      ranges.push(parseEntry(entry));
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) {
      if (rangesOverlap(ranges[i]!, ranges[j]!))
        errors.push(`"${ranges[i]!.source}" and "${ranges[j]!.source}" overlap`);
    }
  ranges.sort((x, y) => (x.family === y.family ? cmp(x.start, y.start) : x.family === 'IPv4' ? -1 : 1));
  return { ranges, errors };
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

/** The first pair of ranges of `a` and `b` that overlap, or undefined. */
export function firstOverlap(
  a: readonly AddressRange[],
  b: readonly AddressRange[],
): [AddressRange, AddressRange] | undefined {
  for (const x of a) for (const y of b) if (rangesOverlap(x, y)) return [x, y];
  return undefined;
}

export function containsIP(ranges: readonly AddressRange[], family: Family, value: bigint): boolean {
  return ranges.some((r) => r.family === family && r.start <= value && value <= r.end);
}

/** Number of addresses of `family` in `ranges` (ranges do not overlap). */
export function sizeOf(ranges: readonly AddressRange[], family: Family): bigint {
  return ranges.filter((r) => r.family === family).reduce((n, r) => n + (r.end - r.start + 1n), 0n);
}

/**
 * The lowest address of `family` in `ranges` for which `taken` is false. It steps only over
 * taken addresses, so it ends within (number taken + 1) steps however large the range is.
 */
export function lowestFree(
  ranges: readonly AddressRange[],
  family: Family,
  taken: (ip: string) => boolean,
): string | undefined {
  for (const r of ranges) {
    if (r.family !== family) continue;
    for (let v = r.start; v <= r.end; v++) {
      const ip = formatIP(family, v);
      if (!taken(ip)) return ip;
    }
  }
  return undefined;
}
