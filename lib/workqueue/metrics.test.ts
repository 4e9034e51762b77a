import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';
import { QUEUE_DURATION_BUCKETS } from './metrics.js';
import { newRateLimitingQueue } from './ratelimiting.js';

/** The value of `metric` (or of one of its _sum/_count/_bucket series) for queue `name`. */
async function value(
  registry: Registry,
  metric: string,
  name: string,
  series = metric,
): Promise<number | undefined> {
  const m = registry.getSingleMetric(metric);
  if (!m) throw new Error(`metric ${metric} not registered`);
  const data = await m.get();
  return data.values.find(
    (v) =>
      v.labels.name === name &&
      ((v as { metricName?: string }).metricName ?? metric) === series &&
      v.labels.le === undefined,
  )?.value;
}

describe('workqueue metrics', () => {
  it('uses client-go buckets: 1e-8 to 10 by decades', () => {
    expect(QUEUE_DURATION_BUCKETS).toEqual([1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10]);
  });

  it('tracks depth, adds, queue and work durations, in-progress work and retries', async () => {
    const clock = new FakeClock();
    const registry = newRegistry();
    const q = newRateLimitingQueue<string>({ name: 'pods', clock, registry });

    expect(await value(registry, 'workqueue_depth', 'pods')).toBe(0);
    q.add('a');
    q.add('b');
    q.add('a'); // dedup: not an add
    expect(await value(registry, 'workqueue_depth', 'pods')).toBe(2);
    expect(await value(registry, 'workqueue_adds_total', 'pods')).toBe(2);

    clock.advance(10);
    expect(q.tryGet()).toBe('a');
    expect(await value(registry, 'workqueue_depth', 'pods')).toBe(1);
    expect(
      await value(
        registry,
        'workqueue_queue_duration_seconds',
        'pods',
        'workqueue_queue_duration_seconds_count',
      ),
    ).toBe(1);
    expect(
      await value(
        registry,
        'workqueue_queue_duration_seconds',
        'pods',
        'workqueue_queue_duration_seconds_sum',
      ),
    ).toBeCloseTo(0.01, 9);

    clock.advance(30);
    expect(q.tryGet()).toBe('b');
    clock.advance(10);
    // a has run 40 ms, b 10 ms.
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'pods')).toBeCloseTo(0.05, 9);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'pods')).toBeCloseTo(0.04, 9);

    q.done('a');
    expect(
      await value(
        registry,
        'workqueue_work_duration_seconds',
        'pods',
        'workqueue_work_duration_seconds_count',
      ),
    ).toBe(1);
    expect(
      await value(registry, 'workqueue_work_duration_seconds', 'pods', 'workqueue_work_duration_seconds_sum'),
    ).toBeCloseTo(0.04, 9);
    q.done('b');
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'pods')).toBe(0);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'pods')).toBe(0);

    q.addRateLimited('a');
    q.addAfter('b', 0);
    expect(await value(registry, 'workqueue_retries_total', 'pods')).toBe(2);
    expect(await value(registry, 'workqueue_adds_total', 'pods')).toBe(3); // b added now, a still waiting
  });

  it('a key re-added while processing counts in depth until it is taken again', async () => {
    const clock = new FakeClock();
    const registry = newRegistry();
    const q = newRateLimitingQueue<string>({ name: 'q', clock, registry });
    q.add('a');
    q.tryGet();
    q.add('a');
    expect(await value(registry, 'workqueue_depth', 'q')).toBe(1);
    q.done('a');
    expect(q.tryGet()).toBe('a');
    expect(await value(registry, 'workqueue_depth', 'q')).toBe(0);
  });

  it('several queues share the metric objects of one registry, one name label each', async () => {
    const clock = new FakeClock();
    const registry = newRegistry();
    const one = newRateLimitingQueue<string>({ name: 'one', clock, registry });
    const two = newRateLimitingQueue<string>({ name: 'two', clock, registry });
    one.add('x');
    two.add('x');
    two.add('y');
    one.tryGet();
    two.tryGet();
    clock.advance(1000);
    expect(await value(registry, 'workqueue_adds_total', 'one')).toBe(1);
    expect(await value(registry, 'workqueue_adds_total', 'two')).toBe(2);
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'one')).toBe(1);
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'two')).toBe(1);
    const text = await registry.getSingleMetricAsString('workqueue_depth');
    expect(text).toContain('workqueue_depth{name="one"} 0');
    expect(text).toContain('workqueue_depth{name="two"} 1');
    const scrape = await registry.metrics();
    expect(scrape).toContain('workqueue_queue_duration_seconds_bucket{le="1e-8",name="one"} 1');
  });

  it('registers nothing when no registry is given', () => {
    const q = newRateLimitingQueue<string>({ name: 'silent', clock: new FakeClock() });
    q.add('a');
    expect(q.len()).toBe(1);
  });
});
