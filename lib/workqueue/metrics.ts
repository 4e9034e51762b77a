/**
 * Work-queue metrics under client-go's names, one `name` label per queue.
 *
 * Each queue keeps its own plain numbers (depth, adds, retries, bucket counts) and the
 * registry reads them only when scraped: one metric family per name and registry, shared by
 * every queue registered there, whose get() builds the exported values from the live queues.
 * client-go binds each queue's metrics once for the same reason; prom-client would re-hash the
 * label set on every add/get/done (about 2 µs per key). The export is the one prom-client's
 * Counter/Gauge/Histogram gave: same names, help, types, label order, buckets and line order.
 *
 * client-go refreshes the two "in progress" gauges (unfinished work, longest running
 * processor) from a goroutine every 500 ms; here they are computed at scrape time: exact,
 * and no timer to leak or drive in tests.
 */
import type { Registry } from '../metrics/index.js';
import { getOrCreate } from '../metrics/index.js';
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

/** One series of values as prom-client's Registry formats it (`metricName` for _bucket/_sum/_count). */
interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric family the Registry serves like a prom-client metric (it calls get() on scrape and
 * reset() from resetMetrics()), whose values are computed from the queues at that moment.
 */
class ScrapedFamily {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly values: () => ExportedValue[],
    readonly reset: () => void = () => {},
  ) {}

  get(): Promise<{
    name: string;
    help: string;
    type: MetricType;
    values: ExportedValue[];
    aggregator: string;
  }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.values(),
      aggregator: this.aggregator,
    });
  }
}

/**
 * Combine values per queue name, in the order the names first appear: several queues may
 * share a name (they shared one labelled child in prom-client too).
 */
function perName<T>(
  items: Iterable<T>,
  name: (t: T) => string,
  combine: (into: T, t: T) => T,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const t of items) {
    const seen = out.get(name(t));
    out.set(name(t), seen === undefined ? t : combine(seen, t));
  }
  return out;
}

/** A histogram with client-go's buckets, owned by one queue: per-bucket counts, sum and count. */
class DurationHistogram {
  /** Observations per bucket (not cumulative); above the last bound they count only in `count`. */
  readonly buckets: number[] = QUEUE_DURATION_BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  constructor(
    readonly queue: string,
    /** Called on the first observation: a queue shows in the export once it has observed. */
    private readonly onFirst: (h: DurationHistogram) => void,
  ) {}

  observe(seconds: number): void {
    if (this.count === 0) this.onFirst(this);
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < QUEUE_DURATION_BUCKETS.length; i++) {
      if (seconds <= (QUEUE_DURATION_BUCKETS[i] as number)) {
        (this.buckets[i] as number)++;
        return;
      }
    }
  }
}

/** What one registry exports: its queues, in creation order, and its histograms, in first-observation order. */
class RegistryQueues {
  readonly queues: RegistryQueueMetrics<unknown>[] = [];
  readonly queueDurations: DurationHistogram[] = [];
  readonly workDurations: DurationHistogram[] = [];

  constructor(registry: Registry) {
    const n = WORKQUEUE_METRIC_NAMES;
    /** A gauge or counter: one value per queue name (summed, or `combine`d). */
    const perQueue =
      (pick: (q: RegistryQueueMetrics<unknown>) => number, combine = (a: number, b: number) => a + b) =>
      (): ExportedValue[] => {
        const values = this.queues.map((q) => ({ name: q.name, value: pick(q) }));
        const merged = perName(
          values,
          (v) => v.name,
          (into, v) => ({ ...into, value: combine(into.value, v.value) }),
        );
        return [...merged.values()].map(({ name, value }) => ({ value, labels: { name } }));
      };
    const family = (
      name: string,
      help: string,
      type: MetricType,
      values: () => ExportedValue[],
      reset?: () => void,
    ) =>
      getOrCreate(registry, name, () => {
        const f = new ScrapedFamily(name, help, type, values, reset);
        // The Registry only reads name, help, type, aggregator, get() and reset().
        registry.registerMetric(f as unknown as Parameters<Registry['registerMetric']>[0]);
        return f;
      });
    family(
      n.depth,
      'Number of keys waiting in the work queue.',
      'gauge',
      perQueue((q) => q.depth),
    );
    family(
      n.adds,
      'Keys added to the work queue (adds of an already queued key not counted).',
      'counter',
      perQueue((q) => q.adds),
      () => this.queues.forEach((q) => (q.adds = 0)),
    );
    family(
      n.queueDuration,
      'Seconds a key waited in the work queue before a worker took it.',
      'histogram',
      () => histogramValues(n.queueDuration, this.queueDurations),
      () => this.queueDurations.splice(0).forEach(clearHistogram),
    );
    family(
      n.workDuration,
      'Seconds a worker spent on a key, from get to done.',
      'histogram',
      () => histogramValues(n.workDuration, this.workDurations),
      () => this.workDurations.splice(0).forEach(clearHistogram),
    );
    family(
      n.retries,
      'Delayed or rate-limited re-adds to the work queue.',
      'counter',
      perQueue((q) => q.retries),
      () => this.queues.forEach((q) => (q.retries = 0)),
    );
    family(
      n.unfinishedWork,
      'Seconds of work in progress not yet observed by work_duration; steady growth means stuck workers.',
      'gauge',
      perQueue((q) => q.unfinishedSeconds()),
    );
    family(
      n.longestRunning,
      'Seconds the longest running worker of the queue has spent on its key.',
      'gauge',
      perQueue((q) => q.longestRunningSeconds(), Math.max),
    );
  }
}

function clearHistogram(h: DurationHistogram): void {
  h.buckets.fill(0);
  h.sum = 0;
  h.count = 0;
}

/** prom-client's histogram export: cumulative buckets (le first), +Inf, _sum, _count, per queue. */
function histogramValues(metric: string, histograms: DurationHistogram[]): ExportedValue[] {
  const copies = histograms.map((h) => ({
    queue: h.queue,
    buckets: [...h.buckets],
    sum: h.sum,
    count: h.count,
  }));
  const merged = perName(
    copies,
    (h) => h.queue,
    (into, h) => {
      h.buckets.forEach((c, i) => ((into.buckets[i] as number) += c));
      into.sum += h.sum;
      into.count += h.count;
      return into;
    },
  );
  const out: ExportedValue[] = [];
  for (const [name, h] of merged) {
    let cumulative = 0;
    QUEUE_DURATION_BUCKETS.forEach((le, i) => {
      cumulative += h.buckets[i] as number;
      out.push({ value: cumulative, labels: { le, name }, metricName: `${metric}_bucket` });
    });
    out.push({ value: h.count, labels: { le: '+Inf', name }, metricName: `${metric}_bucket` });
    out.push({ value: h.sum, labels: { name }, metricName: `${metric}_sum` });
    out.push({ value: h.count, labels: { name }, metricName: `${metric}_count` });
  }
  return out;
}

const registries = new WeakMap<Registry, RegistryQueues>();

export class RegistryQueueMetrics<K> implements QueueMetrics<K> {
  /** Keys waiting (a key re-added while processing counts from its add). */
  depth = 0;
  adds = 0;
  retries = 0;
  private readonly queueDuration: DurationHistogram;
  private readonly workDuration: DurationHistogram;
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
    this.now = durationClock(clock);
    let exported = registries.get(registry);
    if (!exported) registries.set(registry, (exported = new RegistryQueues(registry)));
    const e = exported;
    this.queueDuration = new DurationHistogram(name, (h) => e.queueDurations.push(h));
    this.workDuration = new DurationHistogram(name, (h) => e.workDurations.push(h));
    // Exported from the start, zeros included, so dashboards see the queue before its first key.
    e.queues.push(this as RegistryQueueMetrics<unknown>);
  }

  add(key: K): void {
    this.adds++;
    this.depth++;
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.now());
  }

  get(key: K): void {
    this.depth--;
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
    this.retries++;
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
