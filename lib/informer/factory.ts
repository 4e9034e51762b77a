/**
 * One shared informer per (resource, namespace, selectors, transform, metadataOnly, shard) for
 * the whole process, so ten controllers watching pods cost one watch and one cache. A sharded
 * informer (InformerOptions.shard, KEP-5866) is apart from the resource's full one.
 */
import type { KubeObject } from '../api/index.js';
import type { KubeClient, ResourceRef } from '../client/types.js';
import type { Clock } from '../clock/index.js';
import { RealClock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import { errorMessage, nopLogger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import type { SharedInformerOptions } from './shared-informer.js';
import { DefaultSharedIndexInformer, resourceLabel, STRIP_MANAGED_FIELDS } from './shared-informer.js';
import type { InformerOptions, InformerShard, SharedIndexInformer, SharedInformerFactory } from './types.js';

/** kube-controller-manager's --min-resync-period default: 12 h. */
export const DEFAULT_MIN_RESYNC_PERIOD_MS = 12 * 3600_000;

export interface SharedInformerFactoryOptions {
  logger?: Logger;
  registry?: Registry;
  clock?: Clock;
  /** How often waitForCacheSync names the informers still syncing; default 5 s. */
  syncProgressIntervalMs?: number;
  /**
   * kube-controller-manager's --min-resync-period: each informer made here re-delivers its
   * whole cache to its handlers every minResyncPeriodMs × [1, 2) (a random factor per
   * informer, so informers do not resync together). That is what brings back a key a
   * controller dropped after its retries. 0 or absent: no resync.
   */
  minResyncPeriodMs?: number;
  /** Randomness for the resync jitter (tests); default Math.random. */
  random?: () => number;
  /** Defaults for every informer made here (ring size, reflector knobs such as useWatchList). */
  informerDefaults?: Pick<SharedInformerOptions<KubeObject>, 'ringCapacity' | 'chunkSize' | 'reflector'>;
}

export class DefaultSharedInformerFactory implements SharedInformerFactory {
  private readonly informers = new Map<string, DefaultSharedIndexInformer<KubeObject>>();
  private readonly runningInformers = new Set<DefaultSharedIndexInformer<KubeObject>>();
  /** The one InformerShard each sharded informer reports to. */
  private readonly shards = new Map<DefaultSharedIndexInformer<KubeObject>, InformerShard>();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private signal: AbortSignal | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: SharedInformerFactoryOptions = {},
  ) {
    this.logger = opts.logger ?? nopLogger();
    this.clock = opts.clock ?? new RealClock();
  }

  informerFor<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    opts: InformerOptions<T> = {},
  ): SharedIndexInformer<T> {
    const transform = opts.transform ?? STRIP_MANAGED_FIELDS;
    const key = JSON.stringify([
      ref.group,
      ref.version,
      ref.resource,
      opts.namespace ?? '',
      opts.labelSelector ?? '',
      opts.fieldSelector ?? '',
      transform.name,
      !!opts.metadataOnly,
      opts.shard?.name ?? '',
    ]);
    let informer = this.informers.get(key);
    if (informer && opts.shard && this.shards.get(informer) !== opts.shard)
      throw new Error(`informer shard "${opts.shard.name}" is already bound to another InformerShard`);
    if (!informer) {
      const made = new DefaultSharedIndexInformer<T>(ref, this.client.resource<T>(ref), {
        ...this.opts.informerDefaults,
        resyncPeriodMs: this.resyncPeriod(),
        ...opts,
        transform,
        logger: this.logger,
        registry: this.opts.registry,
        clock: this.clock,
      });
      informer = made as unknown as DefaultSharedIndexInformer<KubeObject>;
      this.informers.set(key, informer);
      if (opts.shard) this.shards.set(informer, opts.shard);
      if (this.signal) this.runOne(informer, this.signal);
    }
    return informer as unknown as SharedIndexInformer<T>;
  }

  /** KCM's ResyncPeriod: the minimum stretched by a random factor in [1, 2). */
  private resyncPeriod(): number {
    const min = this.opts.minResyncPeriodMs ?? 0;
    if (!(min > 0)) return 0;
    return Math.floor(min * (1 + (this.opts.random ?? Math.random)()));
  }

  /** Every informer made so far. */
  all(): SharedIndexInformer[] {
    return [...this.informers.values()];
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
    for (const informer of this.informers.values()) this.runOne(informer, signal);
  }

  async waitForCacheSync(signal: AbortSignal): Promise<boolean> {
    const started = [...this.runningInformers];
    const pending = () => started.filter((i) => !i.hasSynced());
    if (pending().length === 0) return true;
    const every = this.opts.syncProgressIntervalMs ?? 5000;
    const clock = this.clock;
    const startedAt = clock.now();
    const log = (left: DefaultSharedIndexInformer<KubeObject>[]) =>
      this.logger.info('waiting for informer caches to sync', {
        unsynced: left.map((i) => resourceLabel(i.ref)),
        synced: started.length - left.length,
        waitedSeconds: Math.round((clock.now() - startedAt) / 1000),
      });
    let timer = clock.setTimer(every, function tick() {
      const left = pending();
      if (left.length === 0) return;
      log(left);
      timer = clock.setTimer(every, tick);
    });
    try {
      const all = Promise.all(started.map((i) => i.whenSynced())).then(() => true);
      const aborted = new Promise<boolean>((resolve) => {
        if (signal.aborted) resolve(false);
        signal.addEventListener('abort', () => resolve(false), { once: true });
      });
      const ok = await Promise.race([all, aborted]);
      if (ok) this.logger.info('informer caches synced', { informers: started.length });
      else
        this.logger.warn('stopped waiting for informer caches', {
          unsynced: pending().map((i) => resourceLabel(i.ref)),
        });
      return ok;
    } finally {
      timer.cancel();
    }
  }

  private runOne(informer: DefaultSharedIndexInformer<KubeObject>, signal: AbortSignal): void {
    if (this.runningInformers.has(informer)) return;
    this.runningInformers.add(informer);
    informer.run(signal).catch((err: unknown) => {
      // run() only rejects on a programming error; say so loudly rather than lose the informer quietly.
      this.logger.error('informer stopped unexpectedly', {
        informer: resourceLabel(informer.ref),
        err: errorMessage(err),
      });
    });
  }
}
