import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram } from 'prom-client';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';
import { QUEUE_DURATION_BUCKETS } from './metrics.js';
import { newRateLimitingQueue } from './ratelimiting.js';

/**
 * Two queues in one registry through adds, dedup, waits that land in every bucket (and past
 * the last), work in progress, re-adds while processing, rate-limited and delayed re-adds.
 * Returns the /metrics text after each step that matters.
 */
async function scriptedScrapes(): Promise<string[]> {
  const clock = new FakeClock();
  const registry = newRegistry();
  const one = newRateLimitingQueue<string>({ name: 'one', clock, registry });
  const scrapes = [await registry.metrics()];
  const two = newRateLimitingQueue<string>({ name: 'two', clock, registry });
  two.add('x'); // two observes first: its histogram lines come first
  clock.advance(3);
  two.done(two.tryGet()!);
  for (const k of ['a', 'b', 'c', 'a', 'd']) one.add(k);
  scrapes.push(await registry.metrics());
  // Waits of 0, 1 ms, 10 ms, 100 ms, 1 s, 10 s, 25 s: every decade, a bound itself, past 10 s.
  for (const ms of [0, 1, 9, 90, 900, 9000, 15000]) {
    clock.advance(ms);
    const k = one.tryGet();
    if (k === undefined) {
      one.add(`late-${ms}`);
      clock.advance(ms);
      one.tryGet();
    }
  }
  one.add('a'); // re-added while processing: waits for done
  clock.advance(250);
  scrapes.push(await registry.metrics());
  one.done('a');
  one.done('b');
  clock.advance(7);
  one.done(one.tryGet()!);
  one.addRateLimited('c');
  one.addAfter('e', 0);
  one.addAfter('f', 100);
  clock.advance(100);
  two.add('y');
  two.add('z');
  two.tryGet();
  clock.advance(1);
  scrapes.push(await registry.metrics());
  return scrapes;
}

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

describe('workqueue metrics export', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('exports what the prom-client metrics did for a scripted sequence, line for line', async () => {
    // Recorded from the prom-client implementation (one labelled child per queue, updated on
    // every add/get/done) before the queues kept their own numbers.
    const golden = readFileSync(
      fileURLToPath(new URL('./testdata/metrics-scrapes.txt', import.meta.url)),
      'utf8',
    )
      .split(/^### scrape \d+\n/m)
      .slice(1);
    const scrapes = await scriptedScrapes();
    expect(scrapes).toHaveLength(golden.length);
    scrapes.forEach((scrape, i) =>
      expect(scrape).toBe(golden[i]!.replace(/\n$/, i < golden.length - 1 ? '' : '\n')),
    );
  });

  it('add, get and done touch no prom-client metric: the queue keeps plain numbers until a scrape', async () => {
    const proto = (c: unknown) => (c as { prototype: Record<string, () => unknown> }).prototype;
    const spies = [
      jest.spyOn(proto(Counter), 'incWithoutExemplar'),
      jest.spyOn(proto(Gauge), 'inc'),
      jest.spyOn(proto(Gauge), 'dec'),
      jest.spyOn(proto(Gauge), 'set'),
      jest.spyOn(proto(Histogram), 'observeWithoutExemplar'),
    ];
    const clock = new FakeClock();
    const registry = newRegistry();
    const q = newRateLimitingQueue<string>({ name: 'hot', clock, registry });
    const setup = spies.reduce((n, s) => n + s.mock.calls.length, 0);
    for (let i = 0; i < 100; i++) {
      q.add(`k${i % 10}`);
      const k = q.tryGet();
      clock.advance(1);
      if (k !== undefined) q.done(k);
    }
    q.addRateLimited('k1');
    expect(spies.reduce((n, s) => n + s.mock.calls.length, 0) - setup).toBe(0);
    expect(await value(registry, 'workqueue_adds_total', 'hot')).toBe(100);
  });
});
