/**
 * A work queue that admits only the keys this replica owns on the sharding ring (client-side
 * filtering: every replica's informers still see every object). Around any RateLimitingQueue:
 * - add / addAfter / addRateLimited drop keys we do not own;
 * - get() skips keys that were queued while owned but have been lost since;
 * - on every ownership change, keys newly owned are re-enqueued from the cache (`keys()`), and
 *   in-flight reconciles of keys just lost have their keySignal() aborted, so they stop within
 *   the drain margin the ring's timing leaves (docs/sharding.md).
 * Also exports ts_kcm_shard_keys_owned{controller}: owned keys among `keys()`.
 */
import type { Registry } from 'prom-client';
import type { ControllerSharding, KeySignals, Reconciler } from '../controller/types.js';
import { Gauge, getOrCreate } from '../metrics/index.js';
import type { RateLimitingQueue } from '../workqueue/index.js';

export interface ShardedQueueOptions {
  controller: string;
  /** Every key the controller's caches would enqueue (e.g. the primary informer's keys). */
  keys(): string[];
  registry?: Registry;
}

/** The queue itself when there is no ring; a filtering one otherwise. */
export function shardedQueue(
  queue: RateLimitingQueue<string>,
  sharding: ControllerSharding | undefined,
  opts: ShardedQueueOptions,
): RateLimitingQueue<string> & KeySignals {
  if (!sharding) return Object.assign(queue, { keySignal: () => undefined });
  return new ShardedQueue(queue, sharding, opts);
}

export type { KeySignals };

/**
 * `reconciler` whose signal also aborts when the key moves to another replica while it is being
 * reconciled: a reconciler that passes its signal to every client call then stops writing for
 * that key within the drain margin (docs/sharding.md). Without a ring it is `reconciler`'s own
 * behaviour, unchanged.
 */
export function keyAbortingReconciler(reconciler: Reconciler, queue: KeySignals): Reconciler {
  return {
    reconcile(key, signal) {
      const moved = queue.keySignal(key);
      return reconciler.reconcile(key, moved ? AbortSignal.any([signal, moved]) : signal);
    },
  };
}

export class ShardedQueue implements RateLimitingQueue<string> {
  private readonly inFlight = new Map<string, AbortController>();
  private owned: (key: string) => boolean;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly inner: RateLimitingQueue<string>,
    private readonly sharding: ControllerSharding,
    private readonly opts: ShardedQueueOptions,
  ) {
    this.owned = sharding.snapshot();
    this.unsubscribe = sharding.subscribe(() => this.rebalance());
    if (opts.registry) keysOwnedGauge(opts.registry).set(opts.controller, () => this.ownedCount());
  }

  /** Aborts when this replica loses `key` while it is being reconciled. */
  keySignal(key: string): AbortSignal | undefined {
    return this.inFlight.get(key)?.signal;
  }

  ownedCount(): number {
    const owns = this.sharding.snapshot();
    return this.opts.keys().filter(owns).length;
  }

  add(key: string): void {
    if (this.sharding.owns(key)) this.inner.add(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.sharding.owns(key)) this.inner.addAfter(key, delayMs);
  }

  addRateLimited(key: string): void {
    if (this.sharding.owns(key)) this.inner.addRateLimited(key);
    else this.inner.forget(key);
  }

  async get(): Promise<string | undefined> {
    for (;;) {
      const key = await this.inner.get();
      if (key === undefined) return undefined;
      if (this.sharding.owns(key)) {
        this.inFlight.set(key, new AbortController());
        return key;
      }
      // Lost while queued: the new owner has it in its own queue (its rebalance re-enqueued it).
      this.inner.done(key);
      this.inner.forget(key);
    }
  }

  done(key: string): void {
    this.inFlight.delete(key);
    this.inner.done(key);
  }

  forget(key: string): void {
    this.inner.forget(key);
  }

  numRequeues(key: string): number {
    return this.inner.numRequeues(key);
  }

  len(): number {
    return this.inner.len();
  }

  shutDown(): void {
    this.unsubscribe();
    this.inner.shutDown();
  }

  shutDownWithDrain(): Promise<void> {
    this.unsubscribe();
    return this.inner.shutDownWithDrain();
  }

  shuttingDown(): boolean {
    return this.inner.shuttingDown();
  }

  private rebalance(): void {
    const before = this.owned;
    const now = this.sharding.snapshot();
    this.owned = now;
    for (const [key, ctl] of this.inFlight)
      if (!now(key)) ctl.abort(new Error(`shard key ${key} moved to another replica`));
    if (this.inner.shuttingDown()) return;
    for (const key of this.opts.keys()) if (now(key) && !before(key)) this.inner.add(key);
  }
}

const providers = new WeakMap<Registry, Map<string, () => number>>();

function keysOwnedGauge(registry: Registry): Map<string, () => number> {
  const existing = providers.get(registry);
  if (existing) return existing;
  const map = new Map<string, () => number>();
  providers.set(registry, map);
  getOrCreate(
    registry,
    'ts_kcm_shard_keys_owned',
    () =>
      new Gauge({
        name: 'ts_kcm_shard_keys_owned',
        help: 'Cached primary objects of the controller whose key this replica owns on the sharding ring (summed over the replicas: the object count).',
        labelNames: ['controller'],
        registers: [registry],
        collect() {
          for (const [controller, count] of map) this.set({ controller }, count());
        },
      }),
  );
  return map;
}
