import type { KubeObject } from '../api/index.js';
import type { ResourceRef } from '../client/types.js';

/** Handed to onDelete when the informer missed the real delete (relist after 410, ring overflow). */
export class DeletedFinalStateUnknown<T extends KubeObject = KubeObject> {
  constructor(
    readonly key: string,
    readonly obj: T,
  ) {}
}

export type IndexFunc<T> = (obj: T) => string[];

/** A cache keyed `namespace/name` (or `name` for cluster-scoped objects) with named indexes. */
export interface Indexer<T extends KubeObject = KubeObject> {
  keyOf(obj: T): string;
  get(key: string): T | undefined;
  list(): T[];
  listKeys(): string[];
  /** Objects whose index `indexName` yields `value`. Throws on an unknown index name. */
  byIndex(indexName: string, value: string): T[];
  /** Add indexes; allowed at any time (existing objects are indexed at once). */
  addIndexers(indexers: Record<string, IndexFunc<T>>): void;
  /** Test and bootstrap helpers: write straight to the cache. */
  add(obj: T): void;
  update(obj: T): void;
  delete(obj: T): void;
  replace(objs: T[]): void;
}

/** Name of the built-in namespace index. */
export const NAMESPACE_INDEX = 'namespace';

export interface ResourceEventHandler<T extends KubeObject = KubeObject> {
  onAdd?(obj: T, isInInitialList: boolean): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T | DeletedFinalStateUnknown<T>): void;
}

export interface HandlerRegistration {
  /** True once this handler has been delivered the informer's initial state. */
  hasSynced(): boolean;
  remove(): void;
}

export interface SharedIndexInformer<T extends KubeObject = KubeObject> {
  readonly ref: ResourceRef;
  addEventHandler(handler: ResourceEventHandler<T>, resyncPeriodMs?: number): HandlerRegistration;
  getIndexer(): Indexer<T>;
  addIndexers(indexers: Record<string, IndexFunc<T>>): void;
  hasSynced(): boolean;
  /**
   * Why the informer has not synced yet: the last list/watch error since it started, or
   * undefined (none yet, or synced). The manager uses it to tell a controller waiting for an
   * API the server does not serve (404) from one that is merely slow.
   */
  syncError?(): unknown;
  /**
   * Resolves once hasSynced() turns true. Optional: without it a cache-sync wait only polls
   * hasSynced() (every 100 ms, as client-go), with it the wait ends the moment the list is stored.
   */
  whenSynced?(): Promise<void>;
  lastSyncResourceVersion(): string;
  /** Runs until `signal` aborts; never stops on its own (errors are retried with backoff). */
  run(signal: AbortSignal): Promise<void>;
}

/** A KEP-5866 shardSelector with its client-side twin. */
export interface ShardFilter {
  /** The `shardSelector` query parameter. */
  readonly selector: string;
  /** True when `obj` is in the share the selector selects (the hash the apiserver computes). */
  admits(obj: KubeObject): boolean;
}

/**
 * Lets an informer list and watch one share of a resource where the apiserver serves KEP-5866
 * (`shardSelector`, alpha in 1.36). Every list sends current()'s selector; when the list
 * echoes it (metadata.shardInfo.selector) the cache holds that share and the watch carries
 * the same selector, with events outside it dropped on the client too. When it does not
 * (v1.35), the informer lists and watches everything, as without a shard. A change of
 * current() re-lists, unless the server ignored the last selector. Paginated LIST only: the
 * support is read from the list answer, which a WatchList stream does not have.
 */
export interface InformerShard {
  /** Names the shard: the factory keeps its informer apart from the resource's unfiltered one. */
  readonly name: string;
  /** The filter the next list sends. */
  current(): ShardFilter;
  /** Called when current() may have changed; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /**
   * After each list has been stored: the filter the apiserver applied (the cache now holds
   * that share only), or undefined when it ignored the selector (the cache holds everything).
   */
  listed(applied: ShardFilter | undefined): void;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Applied before storing. Default: strip metadata.managedFields. Name it so it can be shared. */
  transform?: { name: string; fn: (obj: T) => T };
  /** Watch PartialObjectMetadata only. */
  metadataOnly?: boolean;
  /** Periodic resync (re-delivery of cached objects as updates); 0 or absent: off. */
  resyncPeriodMs?: number;
  /** List and watch one KEP-5866 share where the server serves it (one informer per shard name). */
  shard?: InformerShard;
}

export interface SharedInformerFactory {
  /** One informer per (resource, namespace, selectors, transform, metadataOnly, shard), shared by all callers. */
  informerFor<T extends KubeObject = KubeObject>(
    ref: ResourceRef<T>,
    opts?: InformerOptions<T>,
  ): SharedIndexInformer<T>;
  /** Starts every informer created so far (and later ones as they are created) until `signal` aborts. */
  start(signal: AbortSignal): void;
  /** Resolves true when every started informer has synced, false if `signal` aborts first. Logs progress. */
  waitForCacheSync(signal: AbortSignal): Promise<boolean>;
}
