/**
 * Work-queue metrics under client-go's names, one `name` label per queue. Several queues
 * share the metric objects of a registry (getOrCreate), each writing its own label.
 *
 * client-go refreshes the two "in progress" gauges (unfinished work, longest running
 * processor) from a goroutine every 500 ms. Here they are computed in prom-client's
 * collect() hook instead: exact at scrape time, and no timer to leak or drive in tests.
 */
import { Counter, Gauge, Histogram, getOrCreate } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';
import { RealClock } from '../clock/index.js';
import type { Clock } from '../clock/index.js';

/** client-go's buckets: 10 ns to 10 s, ten decades. Built from strings to get exact decimals. */
export const QUEUE_DURATION_BUCKETS: number[] = Array.from({ length: 10 }, (_, i) => Number(`1e${i - 8}`));

export const WORKQUEUE_METRIC_NAMES = {
  depth: 'workqueue_depth',
  adds: 'workqueue_adds_total',
  queueDuration: 'workqueue_queue_duration_seconds',
  workDuration: 'workqueue_work_duration_seconds',
  unfinishedWork: 'workqueue_unfinished_work_seconds',
  longestRunning: 'workqueue_longest_running_processor_seconds',
  retries: 'workqueue_retries_total',
} as const;

/** What a queue reports; the no-op version is used when no registry is given. */
export interface QueueMetrics<K> {
  add(key: K): void;
  get(key: K): void;
  done(key: K): void;
  retry(): void;
}

export function noopQueueMetrics<K>(): QueueMetrics<K> {
  return { add() {}, get() {}, done() {}, retry() {} };
}

/**
 * Milliseconds for durations. The Clock interface has millisecond resolution, too coarse for
 * sub-millisecond queue waits, so with the real clock we use the monotonic performance.now();
 * with a fake clock, the fake time (so tests see exact values).
 */
export function durationClock(clock: Clock): () => number {
  return clock instanceof RealClock ? () => performance.now() : () => clock.now();
}

/** Live queues per registry, read by the in-progress gauges at scrape time. */
const liveQueues = new WeakMap<Registry, Set<RegistryQueueMetrics<unknown>>>();

function inProgressGauge(
  registry: Registry,
  name: string,
  help: string,
  pick: (q: RegistryQueueMetrics<unknown>) => number,
): Gauge {
  return getOrCreate(
    registry,
    name,
    () =>
      new Gauge({
        name,
        help,
        labelNames: ['name'],
        registers: [registry],
        collect() {
          for (const q of liveQueues.get(registry) ?? []) this.set({ name: q.name }, pick(q));
        },
      }),
  );
}

export class RegistryQueueMetrics<K> implements QueueMetrics<K> {
  // Children bound to this queue's label: prom-client then skips re-hashing the label set on
  // every update (about half the cost of a counter increment).
  private readonly depth: Gauge.Internal<string>;
  private readonly adds: Counter.Internal;
  private readonly queueDuration: Histogram.Internal<string>;
  private readonly workDuration: Histogram.Internal<string>;
  private readonly retries: Counter.Internal;
  private readonly now: () => number;
  /** When each queued key was first added (a re-add before get keeps the first time). */
  private readonly addedAt = new Map<K, number>();
  /** When each key being processed was handed out. */
  private readonly startedAt = new Map<K, number>();

  constructor(
    readonly name: string,
    registry: Registry,
    clock: Clock,
  ) {
    const n = WORKQUEUE_METRIC_NAMES;
    this.now = durationClock(clock);
    this.depth = getOrCreate<Gauge>(
      registry,
      n.depth,
      () =>
        new Gauge({
          name: n.depth,
          help: 'Number of keys waiting in the work queue.',
          labelNames: ['name'],
          registers: [registry],
        }),
    ).labels({ name });
    this.adds = getOrCreate<Counter>(
      registry,
      n.adds,
      () =>
        new Counter({
          name: n.adds,
          help: 'Keys added to the work queue (adds of an already queued key not counted).',
          labelNames: ['name'],
          registers: [registry],
        }),
    ).labels({ name });
    this.queueDuration = getOrCreate<Histogram>(
      registry,
      n.queueDuration,
      () =>
        new Histogram({
          name: n.queueDuration,
          help: 'Seconds a key waited in the work queue before a worker took it.',
          labelNames: ['name'],
          buckets: QUEUE_DURATION_BUCKETS,
          registers: [registry],
        }),
    ).labels({ name });
    this.workDuration = getOrCreate<Histogram>(
      registry,
      n.workDuration,
      () =>
        new Histogram({
          name: n.workDuration,
          help: 'Seconds a worker spent on a key, from get to done.',
          labelNames: ['name'],
          buckets: QUEUE_DURATION_BUCKETS,
          registers: [registry],
        }),
    ).labels({ name });
    this.retries = getOrCreate<Counter>(
      registry,
      n.retries,
      () =>
        new Counter({
          name: n.retries,
          help: 'Delayed or rate-limited re-adds to the work queue.',
          labelNames: ['name'],
          registers: [registry],
        }),
    ).labels({ name });
    inProgressGauge(
      registry,
      n.unfinishedWork,
      'Seconds of work in progress not yet observed by work_duration; steady growth means stuck workers.',
      (q) => q.unfinishedSeconds(),
    );
    inProgressGauge(
      registry,
      n.longestRunning,
      'Seconds the longest running worker of the queue has spent on its key.',
      (q) => q.longestRunningSeconds(),
    );

    // Export zeros from the start so dashboards see the queue before its first key.
    this.depth.inc(0);
    this.adds.inc(0);
    this.retries.inc(0);
    let set = liveQueues.get(registry);
    if (!set) liveQueues.set(registry, (set = new Set()));
    set.add(this as RegistryQueueMetrics<unknown>);
  }

  add(key: K): void {
    this.adds.inc();
    this.depth.inc();
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.now());
  }

  get(key: K): void {
    this.depth.dec();
    const now = this.now();
    this.startedAt.set(key, now);
    const added = this.addedAt.get(key);
    if (added !== undefined) {
      this.queueDuration.observe((now - added) / 1000);
      this.addedAt.delete(key);
    }
  }

  done(key: K): void {
    const started = this.startedAt.get(key);
    if (started === undefined) return;
    this.workDuration.observe((this.now() - started) / 1000);
    this.startedAt.delete(key);
  }

  retry(): void {
    this.retries.inc();
  }

  unfinishedSeconds(): number {
    const now = this.now();
    let total = 0;
    for (const t of this.startedAt.values()) total += now - t;
    return total / 1000;
  }

  longestRunningSeconds(): number {
    const now = this.now();
    let longest = 0;
    for (const t of this.startedAt.values()) longest = Math.max(longest, now - t);
    return longest / 1000;
  }
}
