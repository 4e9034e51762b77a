/**
 * A consistent-hash ring with virtual nodes. Member `m` with `v` virtual nodes is placed at the
 * points ringHash(`m#0`) … ringHash(`m#<v-1>`) (FNV-1a 64-bit, then murmur3's fmix64: see
 * hash.ts); a key belongs to the member whose point comes first at or after ringHash(key),
 * wrapping past 2^64 - 1 to the lowest point. Every replica that sees the same members with
 * the same counts computes the same owners. The count is the member's own (it publishes it on
 * its Lease, membership.ts), so members with different counts still agree on every point.
 *
 * Two properties the sharding relies on (ring.test.ts checks both):
 * - a member joining takes keys only from others, never moves keys between others; a member
 *   leaving hands only its own keys out;
 * - hence, if X owns k in a member set that contains Y, X also owns k in every other set
 *   containing both: a vnode's position does not depend on the set. Two replicas that see
 *   each other can never both own a key (see docs/sharding.md).
 */
import { fnv1a64, hex64, ringHash } from './hash.js';

/**
 * Virtual nodes per member. With 4 members the largest share of the hash space is on average
 * 4.3 % above the mean at 512 (10 % at 128, 3.1 % at 1024), and a ring of 4 builds in about 13 ms
 * (48 ms at 1024): docs/sharding.md has the table.
 */
export const DEFAULT_VIRTUAL_NODES = 512;

/** The count of a member that does not publish one: the first version's fixed count. */
export const LEGACY_VIRTUAL_NODES = 128;

/** Upper bound on a member's count, so one Lease cannot make every replica build a huge ring. */
export const MAX_VIRTUAL_NODES = 4096;

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
  private readonly counts = new Map<string, number>();
  private readonly points: Point[];

  /**
   * `members` as names (each with `virtualNodes` points) or as a map from name to that
   * member's own count.
   */
  constructor(members: Iterable<string> | ReadonlyMap<string, number>, virtualNodes = DEFAULT_VIRTUAL_NODES) {
    checkVirtualNodes(virtualNodes);
    if (members instanceof Map)
      for (const [member, count] of members as ReadonlyMap<string, number>)
        this.counts.set(member, checkVirtualNodes(count));
    else for (const member of members as Iterable<string>) this.counts.set(member, virtualNodes);
    this.members = [...this.counts.keys()].sort();
    const points: Point[] = [];
    for (const member of this.members) {
      const count = this.counts.get(member)!;
      for (let i = 0; i < count; i++) points.push({ hash: ringHash(`${member}#${i}`), member });
    }
    // Ties (astronomically unlikely) are broken by member name, so the order is total and shared.
    points.sort((a, b) =>
      a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0,
    );
    this.points = points;
  }

  /** How many points `member` has on this ring (undefined: not a member). */
  virtualNodesOf(member: string): number | undefined {
    return this.counts.get(member);
  }

  /** True when `other` has the same members with the same counts. */
  sameMembers(other: ReadonlyMap<string, number>): boolean {
    if (other.size !== this.counts.size) return false;
    for (const [m, c] of other) if (this.counts.get(m) !== c) return false;
    return true;
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

function checkVirtualNodes(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_VIRTUAL_NODES)
    throw new Error(`virtual nodes must be an integer in [1, ${MAX_VIRTUAL_NODES}], got ${n}`);
  return n;
}

/** True when `h` lies in (start, end], wrapping when start >= end. */
export function inRange(h: bigint, r: HashRange): boolean {
  return r.start < r.end ? h > r.start && h <= r.end : h > r.start || h <= r.end;
}

export { fnv1a64, hex64, ringHash, MAX as MAX_HASH };
