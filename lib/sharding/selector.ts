/**
 * KEP-5866 server-side sharded list/watch (alpha in Kubernetes 1.36): a list or watch may carry
 * `shardSelector=shardRange(object.metadata.uid|namespace, '0x<start>', '0x<end>') || …`; the
 * apiserver hashes the field with FNV-1a 64-bit and returns only objects in [start, end). A
 * server that honours the selector echoes it in the list's `metadata.shardInfo.selector`; an
 * older one (our v1.35 control plane) ignores the parameter and returns everything.
 *
 * So the selector is only ever an optimisation under client-side filtering: detect support
 * from the first list's echo, and keep filtering on the client whatever the answer.
 */
import type { KubeList, KubeObject } from '../api/index.js';
import type { ListOptions, ResourceClient, ShardField } from '../client/types.js';
import type { ShardFilter } from '../informer/types.js';
import { fnv1a64, hex64 } from './hash.js';
import type { HashRange } from './ring.js';

export type { ShardField };

/** A KEP-5866 range: [start, end), end up to 2^64. */
export interface ShardRange {
  start: bigint;
  end: bigint;
}

const TWO_64 = 1n << 64n;

/** Turns ring ranges (start, end] (wrapping) into KEP ranges [start, end) (never wrapping). */
export function toShardRanges(ranges: HashRange[]): ShardRange[] {
  const out: ShardRange[] = [];
  for (const r of ranges) {
    const start = r.start + 1n;
    const end = r.end + 1n;
    if (r.start < r.end) out.push({ start, end });
    else {
      if (start < TWO_64) out.push({ start, end: TWO_64 });
      out.push({ start: 0n, end });
    }
  }
  out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  // Touching ranges (the two halves of a range that wrapped, a lone member's whole ring) are one.
  const merged: ShardRange[] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && last.end === r.start) last.end = r.end;
    else merged.push({ ...r });
  }
  return merged;
}

/** The whole hash space, [0, 2^64). */
export const WHOLE_HASH_SPACE: readonly ShardRange[] = [{ start: 0n, end: TWO_64 }];

/** `shardRange(field, '0x…', '0x…') || …`, as KEP-5866 spells it. */
export function shardSelector(field: ShardField, ranges: ShardRange[]): string {
  if (ranges.length === 0) throw new Error('shardSelector: no ranges');
  const hex = (v: bigint): string => (v === TWO_64 ? '0x10000000000000000' : hex64(v));
  return ranges.map((r) => `shardRange(${field}, '${hex(r.start)}', '${hex(r.end)}')`).join(' || ');
}

/** True when the list answer says the server applied exactly `selector`. */
export function shardSelectorHonoured(list: Pick<KubeList, 'metadata'>, selector: string): boolean {
  return list.metadata.shardInfo?.selector === selector;
}

/** Whether `obj` lies in `ranges` by the hash the apiserver would compute for `field`. */
export function inShardRanges(obj: KubeObject, field: ShardField, ranges: ShardRange[]): boolean {
  const value = field === 'object.metadata.uid' ? obj.metadata.uid : obj.metadata.namespace;
  const h = fnv1a64(value ?? '');
  return ranges.some((r) => h >= r.start && h < r.end);
}

/** True when `h` lies in one of `ranges` (sorted by start and disjoint, as toShardRanges returns them). */
export function inSortedShardRanges(h: bigint, ranges: readonly ShardRange[]): boolean {
  let lo = 0;
  let hi = ranges.length; // first range with start > h
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.start <= h) lo = mid + 1;
    else hi = mid;
  }
  const r = ranges[lo - 1];
  return r !== undefined && h < r.end;
}

/** The informer's ShardFilter for ranges of one field: the selector and the same test on the client. */
export class RangeShardFilter implements ShardFilter {
  readonly selector: string;

  constructor(
    readonly field: ShardField,
    /** Sorted by start, disjoint. */
    readonly ranges: readonly ShardRange[],
  ) {
    this.selector = shardSelector(field, [...ranges]);
  }

  admits(obj: KubeObject): boolean {
    const value = this.field === 'object.metadata.uid' ? obj.metadata.uid : obj.metadata.namespace;
    return this.coversHash(fnv1a64(value ?? ''));
  }

  coversHash(h: bigint): boolean {
    return inSortedShardRanges(h, this.ranges);
  }
}

/**
 * List with the shard selector; report whether the server honoured it. When it did not,
 * filter on the client so the caller sees the same share either way.
 */
export async function listShard<T extends KubeObject>(
  rc: ResourceClient<T>,
  opts: ListOptions,
  field: ShardField,
  ranges: ShardRange[],
): Promise<{ list: KubeList<T>; serverSide: boolean }> {
  const selector = shardSelector(field, ranges);
  const list = await rc.list({ ...opts, shardSelector: selector });
  if (shardSelectorHonoured(list, selector)) return { list, serverSide: true };
  return {
    list: { ...list, items: list.items.filter((o) => inShardRanges(o, field, ranges)) },
    serverSide: false,
  };
}
