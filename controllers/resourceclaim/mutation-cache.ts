/**
 * A layer over an informer's indexer that also returns objects this controller just
 * wrote, until the informer delivers them (or something newer).
 *
 * Why: after creating a claim the controller may fail to publish it in the pod status
 * and retry before the watch event arrives. Without this layer the retry would not find
 * the claim (neither by name nor through the owner index) and would create a second one.
 * Same idea as client-go's integer-resourceVersion MutationCache, including objects the
 * informer has never seen ("adds").
 */
import { LRUCache } from 'lru-cache';
import type { KubeObject } from '../../lib/api/index.js';
import type { Clock } from '../../lib/clock/index.js';
import type { IndexFunc, Indexer } from '../../lib/informer/types.js';

/** client-go's resource claim controller keeps entries for an hour; the informer normally catches up in milliseconds. */
export const DEFAULT_MUTATION_TTL_MS = 60 * 60 * 1000;
/** client-go's mutation cache is an LRU of 100 entries: a bound, not a working set (entries live milliseconds). */
export const MUTATION_CACHE_SIZE = 100;

export class MutationCache<T extends KubeObject> {
  private readonly entries: LRUCache<string, T>;

  constructor(
    private readonly indexer: Indexer<T>,
    /** The index functions also installed on `indexer`, applied here to objects it does not hold yet. */
    private readonly indexFuncs: Record<string, IndexFunc<T>>,
    clock: Clock,
    ttlMs = DEFAULT_MUTATION_TTL_MS,
    maxEntries = MUTATION_CACHE_SIZE,
  ) {
    // ttlResolution 0: read the clock on every check (lru-cache would otherwise cache it on a real timer).
    this.entries = new LRUCache<string, T>({ max: maxEntries, ttl: ttlMs, ttlResolution: 0, perf: clock });
  }

  /** Remember an object returned by a write. */
  mutation(obj: T): void {
    this.entries.set(this.indexer.keyOf(obj), obj);
  }

  /**
   * The informer delivered the deletion of `obj`: forget our copy unless it is a newer
   * incarnation. Without this, a claim we created, the informer added and then deleted
   * before anyone looked it up would be answered from our copy until the TTL.
   */
  deleted(obj: T): void {
    const key = this.indexer.keyOf(obj);
    const ours = this.entries.peek(key);
    if (!ours) return;
    const sameObject = ours.metadata.uid !== undefined && ours.metadata.uid === obj.metadata.uid;
    if (sameObject || !isNewer(ours, obj)) this.entries.delete(key);
  }

  get(key: string): T | undefined {
    return this.pick(key, this.indexer.get(key));
  }

  byIndex(indexName: string, value: string): T[] {
    const indexFunc = this.indexFuncs[indexName];
    if (!indexFunc) throw new Error(`mutation cache: unknown index ${indexName}`);
    const out = new Map<string, T>();
    for (const obj of this.indexer.byIndex(indexName, value)) {
      const key = this.indexer.keyOf(obj);
      const chosen = this.pick(key, obj);
      // A newer copy of ours may have moved out of the index (e.g. lost its owner).
      if (chosen && indexFunc(chosen).includes(value)) out.set(key, chosen);
    }
    // Copied first: pick() may drop entries while we go.
    for (const [key, obj] of [...this.entries.entries()]) {
      if (out.has(key)) continue;
      const chosen = this.pick(key, this.indexer.get(key));
      if (chosen && chosen === obj && indexFunc(chosen).includes(value)) out.set(key, chosen);
    }
    return [...out.values()];
  }

  /** Number of objects still held (for tests). */
  size(): number {
    this.entries.purgeStale();
    return this.entries.size;
  }

  /** Our copy if it is fresh and newer than the informer's, else the informer's (dropping ours). */
  private pick(key: string, cached: T | undefined): T | undefined {
    const ours = this.entries.get(key); // undefined once expired (and then dropped)
    if (!ours) return cached;
    if (cached && !isNewer(ours, cached)) {
      this.entries.delete(key);
      return cached;
    }
    return ours;
  }
}

/** Whether `ours` has a strictly larger integer resourceVersion; unparsable versions defer to the informer. */
function isNewer(ours: KubeObject, theirs: KubeObject): boolean {
  const a = parseVersion(ours.metadata.resourceVersion);
  const b = parseVersion(theirs.metadata.resourceVersion);
  return a !== undefined && b !== undefined && a > b;
}

function parseVersion(rv: string | undefined): bigint | undefined {
  if (!rv || !/^[0-9]+$/.test(rv)) return undefined;
  return BigInt(rv);
}
