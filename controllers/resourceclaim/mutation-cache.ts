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
import type { KubeObject } from '../../lib/api/index.js';
import type { Clock } from '../../lib/clock/index.js';
import type { IndexFunc, Indexer } from '../../lib/informer/types.js';

/** client-go's resource claim controller keeps entries for an hour; the informer normally catches up in milliseconds. */
export const DEFAULT_MUTATION_TTL_MS = 60 * 60 * 1000;

interface Entry<T> {
  obj: T;
  storedAt: number;
}

export class MutationCache<T extends KubeObject> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly indexer: Indexer<T>,
    /** The index functions also installed on `indexer`, applied here to objects it does not hold yet. */
    private readonly indexFuncs: Record<string, IndexFunc<T>>,
    private readonly clock: Clock,
    private readonly ttlMs = DEFAULT_MUTATION_TTL_MS,
  ) {}

  /** Remember an object returned by a write. */
  mutation(obj: T): void {
    this.entries.set(this.indexer.keyOf(obj), { obj, storedAt: this.clock.now() });
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
    for (const [key, entry] of this.entries) {
      if (out.has(key)) continue;
      const chosen = this.pick(key, this.indexer.get(key));
      if (chosen && chosen === entry.obj && indexFunc(chosen).includes(value)) out.set(key, chosen);
    }
    return [...out.values()];
  }

  /** Number of objects still held (for tests). */
  size(): number {
    return this.entries.size;
  }

  /** Our copy if it is fresh and newer than the informer's, else the informer's (dropping ours). */
  private pick(key: string, cached: T | undefined): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return cached;
    if (this.clock.now() - entry.storedAt > this.ttlMs) {
      this.entries.delete(key);
      return cached;
    }
    if (cached && !isNewer(entry.obj, cached)) {
      this.entries.delete(key);
      return cached;
    }
    return entry.obj;
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
