/**
 * A consistent-hash ring with virtual nodes. Member `m` is placed at the points
 * ringHash(`m#0`) … ringHash(`m#<vnodes-1>`) (FNV-1a 64-bit, then murmur3's fmix64: see
 * hash.ts); a key belongs to the member whose point comes first at or after ringHash(key), wrapping past 2^64 - 1 to the lowest point. Every replica
 * that sees the same member names computes the same owners.
 *
 * Two properties the sharding relies on (ring.test.ts checks both):
 * - a member joining takes keys only from others, never moves keys between others; a member
 *   leaving hands only its own keys out;
 * - hence, if X owns k in a member set that contains Y, X also owns k in every other set
 *   containing both: a vnode's position does not depend on the set. Two replicas that see
 *   each other can never both own a key (see docs/sharding.md).
 */
import { fnv1a64, hex64, ringHash } from './hash.js';

/** Virtual nodes per member: 128 keeps the largest share within about ±25 % of the mean for 2-8 members. */
export const DEFAULT_VIRTUAL_NODES = 128;

const MAX = 0xffffffffffffffffn;

interface Point {
  hash: bigint;
  member: string;
}

/** A half-open-at-start hash range (start, end] owned by one member; start > end wraps past 2^64 - 1. */
export interface HashRange {
  /** Exclusive. */
  start: bigint;
  /** Inclusive. */
  end: bigint;
}

export class HashRing {
  readonly members: readonly string[];
  private readonly points: Point[];

  constructor(
    members: Iterable<string>,
    readonly virtualNodes = DEFAULT_VIRTUAL_NODES,
  ) {
    if (!Number.isInteger(virtualNodes) || virtualNodes < 1)
      throw new Error(`virtual nodes must be a positive integer, got ${virtualNodes}`);
    this.members = [...new Set(members)].sort();
    const points: Point[] = [];
    for (const member of this.members)
      for (let i = 0; i < virtualNodes; i++) points.push({ hash: ringHash(`${member}#${i}`), member });
    // Ties (astronomically unlikely) are broken by member name, so the order is total and shared.
    points.sort((a, b) =>
      a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0,
    );
    this.points = points;
  }

  /** The member owning `key`, or undefined for an empty ring. */
  owner(key: string): string | undefined {
    return this.ownerOfHash(ringHash(key));
  }

  ownerOfHash(h: bigint): string | undefined {
    const pts = this.points;
    if (pts.length === 0) return undefined;
    let lo = 0;
    let hi = pts.length; // first index with hash >= h
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]!.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return (pts[lo] ?? pts[0]!).member;
  }

  /** The hash ranges `member` owns, merged where adjacent, in ascending order of end. */
  rangesOf(member: string): HashRange[] {
    const pts = this.points;
    const out: HashRange[] = [];
    for (let i = 0; i < pts.length; i++) {
      if (pts[i]!.member !== member) continue;
      const start = i === 0 ? pts[pts.length - 1]!.hash : pts[i - 1]!.hash;
      const last = out[out.length - 1];
      if (last && last.end === start) last.end = pts[i]!.hash;
      else out.push({ start, end: pts[i]!.hash });
    }
    return out;
  }

  /** For /readyz and logs: `a,b,c`. */
  toString(): string {
    return this.members.join(',');
  }
}

/** True when `h` lies in (start, end], wrapping when start >= end. */
export function inRange(h: bigint, r: HashRange): boolean {
  return r.start < r.end ? h > r.start && h <= r.end : h > r.start || h <= r.end;
}

export { fnv1a64, hex64, ringHash, MAX as MAX_HASH };
