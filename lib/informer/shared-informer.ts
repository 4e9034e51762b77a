/**
 * A shared informer: one reflector feeding one indexed store, fanned out to any number of
 * handlers through the bounded ring in fanout.ts. Usable without run() (unit tests write to
 * getIndexer() directly).
 */
import type { KubeObject } from '../api/index.js';
import type { ResourceRef } from '../client/types.js';
import { apiVersionOf } from '../client/types.js';
import type { Clock } from '../clock/index.js';
import { RealClock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import { errorMessage, nopLogger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import { Counter, getOrCreate } from '../metrics/index.js';
import { FanOut } from './fanout.js';
import type { ListWatcher, ReflectorOptions } from './reflector.js';
import { Reflector } from './reflector.js';
import type { Store } from './store.js';
import { newIndexer } from './store.js';
import type {
  HandlerRegistration,
  IndexFunc,
  InformerOptions,
  ResourceEventHandler,
  SharedIndexInformer,
} from './types.js';
import { DeletedFinalStateUnknown } from './types.js';

/** The default transform: managedFields are about half of a typical object's heap and no controller reads them. */
export const STRIP_MANAGED_FIELDS = {
  name: 'strip-managed-fields',
  fn: <T extends KubeObject>(obj: T): T => {
    if (obj.metadata?.managedFields === undefined) return obj;
    // Rebuild rather than `delete`: deleting a property drops V8 objects into slow
    // dictionary mode, which costs more heap than the field it removes.
    const { managedFields: _dropped, ...metadata } = obj.metadata;
    obj.metadata = metadata;
    return obj;
  },
};

/** Keep objects exactly as received (benchmarks, debugging). */
export const IDENTITY_TRANSFORM = { name: 'identity', fn: <T extends KubeObject>(obj: T): T => obj };

export interface SharedInformerOptions<T extends KubeObject> extends InformerOptions<T> {
  logger?: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Ring capacity of the fan-out; default 1024. */
  ringCapacity?: number;
  /** Deliveries per handler per event-loop turn; default 100. */
  chunkSize?: number;
  /**
   * Objects a relist applies per event-loop turn; default 1000. A 100k-object relist in one
   * synchronous pass stalls the loop for most of a second (lease renewals, probes, watches
   * all wait); in chunks, each wait is a few milliseconds.
   */
  relistChunkSize?: number;
  /** Reflector knobs (watch list, timeouts, backoff, page size, randomness). */
  reflector?: Partial<Omit<ReflectorOptions, 'name' | 'clock' | 'logger' | 'onError'>>;
}

/** `configmaps`, `servicecidrs.networking.k8s.io`: the resource label used in logs and metrics. */
export function resourceLabel(ref: ResourceRef): string {
  return ref.group ? `${ref.resource}.${ref.group}` : ref.resource;
}

export class DefaultSharedIndexInformer<T extends KubeObject = KubeObject> implements SharedIndexInformer<T> {
  private readonly store: Store<T>;
  private readonly fanout: FanOut<T>;
  private readonly reflector: Reflector<T>;
  private readonly transform: (obj: T) => T;
  private readonly logger: Logger;
  private readonly label: string;
  private readonly defaultResyncMs: number;
  private readonly typeMeta: { apiVersion?: string; kind?: string };
  private readonly relistChunkSize: number;
  private running = false;
  private syncedWaiters: (() => void)[] = [];
  private lastSyncError: unknown;

  constructor(
    readonly ref: ResourceRef,
    lw: ListWatcher<T>,
    opts: SharedInformerOptions<T> = {},
  ) {
    this.label = resourceLabel(ref);
    this.logger = (opts.logger ?? nopLogger()).child({ informer: this.label });
    const clock = opts.clock ?? new RealClock();
    const registry = opts.registry;
    const handlerErrors = registry
      ? getOrCreate(
          registry,
          'informer_handler_errors_total',
          () =>
            new Counter({
              name: 'informer_handler_errors_total',
              help: 'Exceptions thrown by informer event handlers (delivery continues).',
              labelNames: ['resource'],
              registers: [registry],
            }),
        )
      : undefined;
    const watchErrors = registry
      ? getOrCreate(
          registry,
          'informer_watch_errors_total',
          () =>
            new Counter({
              name: 'informer_watch_errors_total',
              help: 'Failed list/watch attempts of informers (each is retried with backoff).',
              labelNames: ['resource'],
              registers: [registry],
            }),
        )
      : undefined;
    this.transform = (opts.transform?.fn ?? STRIP_MANAGED_FIELDS.fn) as (obj: T) => T;
    this.defaultResyncMs = opts.resyncPeriodMs ?? 0;
    this.relistChunkSize = Math.max(1, opts.relistChunkSize ?? 1000);
    this.typeMeta = opts.metadataOnly ? {} : { apiVersion: apiVersionOf(ref), kind: ref.kind };
    this.store = newIndexer<T>();
    this.fanout = new FanOut<T>(this.store, {
      clock,
      ringCapacity: opts.ringCapacity,
      chunkSize: opts.chunkSize,
      onHandlerError: (err, callback) => {
        handlerErrors?.inc({ resource: this.label });
        this.logger.error('event handler failed', { callback, err: errorMessage(err) });
      },
    });
    this.reflector = new Reflector<T>(
      lw,
      { replace: (objs, rv) => this.replace(objs, rv), event: (type, obj) => this.onWatchEvent(type, obj) },
      {
        ...opts.reflector,
        name: this.label,
        namespace: opts.namespace,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        metadataOnly: opts.metadataOnly,
        ...(opts.shard ? { shard: opts.shard } : {}),
        clock,
        logger: this.logger,
        onError: (err) => {
          watchErrors?.inc({ resource: this.label });
          if (!this.hasSynced()) this.lastSyncError = err;
        },
      },
    );
  }

  addEventHandler(handler: ResourceEventHandler<T>, resyncPeriodMs?: number): HandlerRegistration {
    return this.fanout.addListener(handler, resyncPeriodMs ?? this.defaultResyncMs, this.running);
  }

  getIndexer(): Store<T> {
    return this.store;
  }

  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    this.store.addIndexers(indexers);
  }

  hasSynced(): boolean {
    return this.fanout.initialListEnd !== undefined;
  }

  syncError(): unknown {
    return this.hasSynced() ? undefined : this.lastSyncError;
  }

  /** Resolves once the first full state has been stored. */
  whenSynced(): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  lastSyncResourceVersion(): string {
    return this.reflector.lastSyncResourceVersion();
  }

  /** Reflector counters (lists, pages, watches, relists, errors). */
  stats(): Reflector<T>['stats'] {
    return this.reflector.stats;
  }

  /** Resolves when every handler has been delivered everything so far (tests, benchmarks). */
  whenHandlersIdle(): Promise<void> {
    return this.fanout.whenIdle();
  }

  /** Events currently held by the fan-out ring (never above its capacity). */
  ringSize(): number {
    return this.fanout.ring.size;
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error(`informer for ${this.label} is already running`);
    this.running = true;
    this.logger.debug('informer starting');
    try {
      await this.reflector.run(signal);
    } finally {
      this.logger.debug('informer stopped');
    }
  }

  private prepare(obj: T): T {
    const out = this.transform(obj);
    // List items carry no apiVersion/kind; handlers and owner references want them.
    if (this.typeMeta.kind && out.kind === undefined) {
      // A new object (not two added properties) keeps V8's in-object layout compact.
      return { apiVersion: this.typeMeta.apiVersion, kind: this.typeMeta.kind, ...out };
    }
    return out;
  }

  /** Apply a full state: in chunks, yielding to the event loop between them (see relistChunkSize). */
  private async replace(objs: T[], _rv: string): Promise<void> {
    const initial = this.fanout.initialListEnd === undefined;
    const chunk = this.relistChunkSize;
    const seen = new Set<string>();
    for (let i = 0; i < objs.length; i++) {
      if (i > 0 && i % chunk === 0) await yieldToEventLoop();
      const obj = this.prepare(objs[i]!);
      const key = this.store.keyOf(obj);
      seen.add(key);
      // Same resourceVersion, same object: keep the one we hold. Handlers' fan-out listeners
      // reference it, and swapping in an equal copy would pin both until the next change.
      const cur = this.store.get(key);
      if (cur && rv(cur) !== '' && rv(cur) === rv(obj)) continue;
      const old = this.store.put(key, obj);
      if (!old) this.fanout.publish({ type: 'add', key, obj, isInInitialList: initial });
      else if (rv(old) !== rv(obj)) this.fanout.publish({ type: 'update', key, old, obj });
    }
    const gone: string[] = [];
    for (const key of this.store.keysIterator()) if (!seen.has(key)) gone.push(key);
    for (let i = 0; i < gone.length; i++) {
      if (i > 0 && i % chunk === 0) await yieldToEventLoop();
      const key = gone[i]!;
      // We never saw these deletes happen: say so with a tombstone holding the last state we had.
      const old = this.store.deleteKey(key);
      if (old) this.fanout.publish({ type: 'delete', key, obj: new DeletedFinalStateUnknown(key, old) });
    }
    if (initial) {
      this.fanout.markInitialListEnd();
      this.logger.debug('informer synced', { objects: this.store.size });
      for (const w of this.syncedWaiters.splice(0)) w();
    }
  }

  private onWatchEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', raw: T): void {
    const obj = this.prepare(raw);
    const key = this.store.keyOf(obj);
    if (type === 'DELETED') {
      if (this.store.deleteKey(key)) this.fanout.publish({ type: 'delete', key, obj });
      return;
    }
    const old = this.store.put(key, obj);
    if (!old) this.fanout.publish({ type: 'add', key, obj, isInInitialList: false });
    else this.fanout.publish({ type: 'update', key, old, obj });
  }
}

/** A macrotask turn, so timers and I/O (lease renewals, probes) run before the next chunk. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function rv(obj: KubeObject): string {
  return obj.metadata?.resourceVersion ?? '';
}
