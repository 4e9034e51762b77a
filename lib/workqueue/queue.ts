/**
 * The basic work queue, with client-go's guarantees:
 * - FIFO order; a key already waiting is not queued twice (the dirty set);
 * - a key handed to a worker is in the processing set until done(), and is never handed to a
 *   second worker meanwhile; re-added while processing, it is queued again on done();
 * - get() waits for a key; keys are handed to waiting workers synchronously, at the moment
 *   they are queued, so no other get() can slip in between.
 *
 * One difference from client-go, on purpose: after shutDown() get() hands out nothing more,
 * even if keys are still queued. Graceful shutdown means "stop taking work, finish what is
 * in flight"; queued keys are level-triggered and the next process (or leader) rebuilds
 * them from its informers, so working through them would only delay the exit.
 */
import { RealClock } from '../clock/index.js';
import type { Clock } from '../clock/index.js';
import type { Registry } from '../metrics/index.js';
import { RegistryQueueMetrics, noopQueueMetrics } from './metrics.js';
import type { QueueMetrics } from './metrics.js';
import type { WorkQueue } from './types.js';

export interface QueueOptions {
  /** Queue name: the `name` label of the workqueue_* metrics. */
  name: string;
  clock?: Clock;
  /** Where to register the workqueue_* metrics; none when absent. */
  registry?: Registry;
}

/** A FIFO of keys with O(1) push and shift (an array with a moving head). */
class Fifo<K> {
  private items: K[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(key: K): void {
    this.items.push(key);
  }

  shift(): K | undefined {
    if (this.head >= this.items.length) return undefined;
    const key = this.items[this.head] as K;
    this.head++;
    // Compact once the dead prefix dominates, keeping shift amortised O(1).
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
}

export class Queue<K = string> implements WorkQueue<K> {
  readonly name: string;
  protected readonly clock: Clock;
  protected readonly metrics: QueueMetrics<K>;
  private readonly queue = new Fifo<K>();
  /** Keys that need processing: queued, or re-added while being processed. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private shutdown = false;

  constructor(opts: QueueOptions) {
    this.name = opts.name;
    this.clock = opts.clock ?? new RealClock();
    this.metrics = opts.registry
      ? new RegistryQueueMetrics<K>(opts.name, opts.registry, this.clock)
      : noopQueueMetrics<K>();
  }

  add(key: K): void {
    if (this.shutdown || this.dirty.has(key)) return;
    this.metrics.add(key);
    this.dirty.add(key);
    // Being processed: done() will queue it again, so one worker at a time sees it.
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.handOut();
  }

  get(): Promise<K | undefined> {
    if (this.shutdown) return Promise.resolve(undefined);
    if (this.queue.length > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The non-waiting get: a key if one is queued now, else undefined. */
  tryGet(): K | undefined {
    if (this.shutdown || this.queue.length === 0) return undefined;
    return this.take();
  }

  done(key: K): void {
    if (!this.processing.delete(key)) return;
    this.metrics.done(key);
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.handOut();
    }
    if (this.processing.size === 0 && this.drainWaiters.length > 0) this.releaseDrainWaiters();
  }

  len(): number {
    return this.queue.length;
  }

  /** Keys handed out and not yet done (tests, metrics). */
  processingCount(): number {
    return this.processing.size;
  }

  shutDown(): void {
    // Like client-go, a plain shutDown also ends any drain still waiting.
    this.stop();
    this.releaseDrainWaiters();
  }

  shutDownWithDrain(): Promise<void> {
    this.stop();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  shuttingDown(): boolean {
    return this.shutdown;
  }

  /** Hook for subclasses (timers to cancel); always call super. */
  protected stop(): void {
    if (this.shutdown) return;
    this.shutdown = true;
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private take(): K {
    const key = this.queue.shift() as K;
    this.processing.add(key);
    this.dirty.delete(key);
    this.metrics.get(key);
    return key;
  }

  private handOut(): void {
    if (this.shutdown) return;
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const waiter = this.waiters.shift() as (key: K | undefined) => void;
      waiter(this.take());
    }
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}

export function newQueue<K = string>(opts: QueueOptions): Queue<K> {
  return new Queue<K>(opts);
}
