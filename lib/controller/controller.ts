/**
 * The controller runner: N workers feed keys from a rate-limited work queue to a Reconciler.
 *
 * Workers are plain async loops (get -> reconcile -> done), not a p-queue. The work queue
 * already gives ordering, dedup, one-worker-per-key and backpressure (a worker takes the next
 * key only when it is free); a p-queue on top would be a second concurrency limiter holding a
 * second copy of the backlog that could disagree with the first.
 *
 * Outcome of a reconcile (as client-go's sample-controller and controller-runtime):
 * - returns nothing / no requeueAfterMs: success, forget the key's failure history;
 * - returns { requeueAfterMs > 0 }: forget, then addAfter (a planned revisit, no backoff);
 * - throws: addRateLimited (exponential per-key backoff under the shared bucket), unless
 *   maxRetries is set and the key has already been retried that often: then log and drop it;
 * - throws after its key moved to another replica of a sharding ring (the queue's keySignal
 *   aborted, lib/sharding): result shard_moved. Not an error and not retried: the key is the
 *   other replica's now, and this one would not admit it back anyway.
 */
import { RealClock } from '../clock/index.js';
import type { Clock } from '../clock/index.js';
import { errorMessage } from '../log/index.js';
import type { Logger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import type { RateLimitingQueue } from '../workqueue/index.js';
import { reconcileMetrics } from './metrics.js';
import type { ReconcileMetrics, ReconcileOutcome } from './metrics.js';
import type { KeySignals, Reconciler, Runnable } from './types.js';

export interface ControllerOptions {
  /** Controller name: the `controller` label of the ts_kcm_reconcile_* metrics and in logs. */
  name: string;
  /**
   * With a keySignal (lib/sharding's shardedQueue), a reconcile that throws after its key's
   * signal aborted is counted as shard_moved, not as an error, and is not retried.
   */
  queue: RateLimitingQueue<string>;
  reconciler: Reconciler;
  /** Number of concurrent workers (KCM's --concurrent-*-syncs). */
  workers: number;
  /** Drop a key after this many consecutive failed retries. Default: retry forever, as upstream. */
  maxRetries?: number;
  logger: Logger;
  registry?: Registry;
  clock?: Clock;
}

export class Controller implements Runnable {
  readonly name: string;
  readonly queue: RateLimitingQueue<string>;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly maxRetries: number | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly metrics: ReconcileMetrics;
  private readonly elapsedMs: () => number;
  private readonly keySignals: KeySignals | undefined;
  private started = false;
  /** What each reconcile gets as its signal: run()'s `cancel`. */
  private cancel: AbortSignal = new AbortController().signal;

  constructor(opts: ControllerOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) {
      throw new Error(`controller ${opts.name}: workers must be a positive integer, got ${opts.workers}`);
    }
    this.name = opts.name;
    this.queue = opts.queue;
    this.reconciler = opts.reconciler;
    this.workers = opts.workers;
    this.maxRetries = opts.maxRetries;
    this.logger = opts.logger;
    this.clock = opts.clock ?? new RealClock();
    this.metrics = reconcileMetrics(opts.name, opts.registry);
    const clock = this.clock;
    this.elapsedMs = () => clock.monotonicNow();
    this.keySignals = hasKeySignals(opts.queue) ? opts.queue : undefined;
  }

  /**
   * Start the workers. After `stop` aborts, take no new keys and resolve once every worker has
   * stopped: there is no drain timeout here, the manager owns the one budget
   * (--shutdown-timeout) and aborts `cancel` when it is spent (or at once when the Lease is
   * lost). `cancel` is every reconcile's signal: aborting it cancels their client calls.
   */
  async run(stop: AbortSignal, cancel?: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`controller ${this.name}: run() called twice`);
    this.started = true;
    if (cancel) this.cancel = cancel;
    this.logger.info('starting workers', { controller: this.name, workers: this.workers });
    const workers = Promise.all(Array.from({ length: this.workers }, () => this.worker()));

    await new Promise<void>((resolve) => {
      if (stop.aborted) return resolve();
      stop.addEventListener('abort', () => resolve(), { once: true });
    });

    this.logger.info('shutting down, waiting for in-flight reconciles', { controller: this.name });
    // Queued keys are not worked off (level-triggered: the next leader rebuilds them); each
    // worker returns once its in-flight reconcile does.
    await this.queue.shutDownWithDrain();
    await workers;
    this.logger.info('workers stopped', { controller: this.name });
  }

  /** One step of a worker: take a key, reconcile it, settle it. False once the queue is shut down. */
  async processNextWorkItem(): Promise<boolean> {
    const key = await this.queue.get();
    if (key === undefined) return false;
    try {
      await this.reconcileOne(key);
    } finally {
      this.queue.done(key);
    }
    return true;
  }

  private async worker(): Promise<void> {
    while (await this.processNextWorkItem()) {
      // each iteration is one key; processNextWorkItem never throws
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const start = this.elapsedMs();
    let outcome: ReconcileOutcome = 'success';
    try {
      const result = await this.reconciler.reconcile(key, this.cancel);
      this.queue.forget(key);
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) {
        outcome = 'requeue_after';
        this.queue.addAfter(key, after);
      }
    } catch (err) {
      if (this.keySignals?.keySignal(key)?.aborted) {
        outcome = 'shard_moved';
        this.handleMoved(key, err);
      } else {
        outcome = 'error';
        this.handleError(key, err);
      }
    } finally {
      this.metrics.observe(outcome, Math.max(0, this.elapsedMs() - start) / 1000);
    }
  }

  /** The key is another replica's now: drop its backoff history here and do not retry it. */
  private handleMoved(key: string, err: unknown): void {
    this.queue.forget(key);
    this.logger.v(2).info('reconcile stopped: key moved to another replica', {
      controller: this.name,
      key,
      error: errorMessage(err),
    });
  }

  private handleError(key: string, err: unknown): void {
    const retries = this.queue.numRequeues(key);
    if (this.maxRetries !== undefined && retries >= this.maxRetries) {
      this.logger.error(`dropping key after ${retries} retries`, {
        controller: this.name,
        key,
        error: errorMessage(err),
      });
      this.queue.forget(key);
      return;
    }
    this.logger.error('reconcile failed, will retry', {
      controller: this.name,
      key,
      retries,
      error: errorMessage(err),
    });
    this.queue.addRateLimited(key);
  }
}

function hasKeySignals(queue: RateLimitingQueue<string>): queue is RateLimitingQueue<string> & KeySignals {
  return typeof (queue as Partial<KeySignals>).keySignal === 'function';
}
