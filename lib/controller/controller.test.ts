import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import type { Logger, LogMeta } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';
import { newRateLimitingQueue } from '../workqueue/index.js';
import type { RateLimitedQueue } from '../workqueue/index.js';
import { Controller } from './controller.js';
import type { ControllerOptions } from './controller.js';
import type { ReconcileResult, Reconciler } from './types.js';

interface LogLine {
  level: string;
  msg: string;
  meta?: LogMeta;
}

function recordingLogger(lines: LogLine[]): Logger {
  const logger: Logger = {
    error: (msg, meta) => void lines.push({ level: 'error', msg, meta }),
    warn: (msg, meta) => void lines.push({ level: 'warn', msg, meta }),
    info: (msg, meta) => void lines.push({ level: 'info', msg, meta }),
    debug: (msg, meta) => void lines.push({ level: 'debug', msg, meta }),
    child: () => logger,
    v: () => logger,
  };
  return logger;
}

/** A reconciler whose behaviour per call is scripted by a function, and which records calls. */
class ScriptedReconciler implements Reconciler {
  calls: string[] = [];
  constructor(
    private readonly script: (
      key: string,
      call: number,
      signal: AbortSignal,
    ) => Promise<ReconcileResult | void> | ReconcileResult | void,
  ) {}
  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void> {
    this.calls.push(key);
    return this.script(key, this.calls.length, signal);
  }
}

interface Harness {
  clock: FakeClock;
  queue: RateLimitedQueue<string>;
  registry: Registry;
  logs: LogLine[];
  controller: Controller;
}

function harness(reconciler: Reconciler, opts: Partial<ControllerOptions> = {}): Harness {
  const clock = new FakeClock();
  const registry = newRegistry();
  const queue = newRateLimitingQueue<string>({ name: 'test-queue', clock, registry });
  const logs: LogLine[] = [];
  const controller = new Controller({
    name: 'test-controller',
    queue,
    reconciler,
    workers: 2,
    logger: recordingLogger(logs),
    registry,
    clock,
    ...opts,
  });
  return { clock, queue, registry, logs, controller };
}

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
  series = name,
): Promise<number | undefined> {
  const data = await registry.getSingleMetric(name)?.get();
  return data?.values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === series &&
      Object.entries(labels).every(([k, val]) => v.labels[k] === val) &&
      v.labels.le === undefined,
  )?.value;
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('Controller.processNextWorkItem', () => {
  it('on success forgets the key, marks it done and counts a success', async () => {
    const r = new ScriptedReconciler(() => undefined);
    const h = harness(r);
    h.queue.addRateLimited('ns/a'); // a failure history to forget
    h.clock.advance(5);
    expect(await h.controller.processNextWorkItem()).toBe(true);
    expect(r.calls).toEqual(['ns/a']);
    expect(h.queue.numRequeues('ns/a')).toBe(0);
    expect(h.queue.processingCount()).toBe(0);
    expect(h.queue.len()).toBe(0);
    expect(
      await metric(h.registry, 'ts_kcm_reconcile_total', {
        controller: 'test-controller',
        result: 'success',
      }),
    ).toBe(1);
    expect(
      await metric(h.registry, 'ts_kcm_reconcile_total', { controller: 'test-controller', result: 'error' }),
    ).toBe(0);
    expect(
      await metric(
        h.registry,
        'ts_kcm_reconcile_time_seconds',
        { controller: 'test-controller' },
        'ts_kcm_reconcile_time_seconds_count',
      ),
    ).toBe(1);
  });

  it('on a throw retries with rate-limited backoff (5 ms, then 10 ms) and logs the error', async () => {
    const r = new ScriptedReconciler(() => {
      throw new Error('apiserver said no');
    });
    const h = harness(r);
    h.queue.add('ns/a');
    await h.controller.processNextWorkItem();
    expect(h.queue.numRequeues('ns/a')).toBe(1);
    expect(h.queue.len()).toBe(0);
    h.clock.advance(4);
    expect(h.queue.len()).toBe(0);
    h.clock.advance(1);
    expect(h.queue.len()).toBe(1);

    await h.controller.processNextWorkItem();
    expect(h.queue.numRequeues('ns/a')).toBe(2);
    h.clock.advance(9);
    expect(h.queue.len()).toBe(0);
    h.clock.advance(1);
    expect(h.queue.len()).toBe(1);

    expect(h.logs.filter((l) => l.level === 'error')).toEqual([
      {
        level: 'error',
        msg: 'reconcile failed, will retry',
        meta: { controller: 'test-controller', key: 'ns/a', retries: 0, error: 'apiserver said no' },
      },
      {
        level: 'error',
        msg: 'reconcile failed, will retry',
        meta: { controller: 'test-controller', key: 'ns/a', retries: 1, error: 'apiserver said no' },
      },
    ]);
    expect(
      await metric(h.registry, 'ts_kcm_reconcile_total', { controller: 'test-controller', result: 'error' }),
    ).toBe(2);
    expect(await metric(h.registry, 'ts_kcm_reconcile_errors_total', { controller: 'test-controller' })).toBe(
      2,
    );
    expect(await metric(h.registry, 'workqueue_retries_total', { name: 'test-queue' })).toBe(2);
  });

  it('with maxRetries drops the key after that many retries and forgets it', async () => {
    const r = new ScriptedReconciler(() => Promise.reject(new Error('boom')));
    const h = harness(r, { maxRetries: 2 });
    h.queue.add('k');
    for (let i = 0; i < 3; i++) {
      await h.controller.processNextWorkItem();
      h.clock.advance(1000);
    }
    expect(r.calls).toEqual(['k', 'k', 'k']);
    expect(h.queue.len()).toBe(0);
    expect(h.queue.waitingCount()).toBe(0);
    expect(h.queue.numRequeues('k')).toBe(0);
    const errors = h.logs.filter((l) => l.level === 'error').map((l) => l.msg);
    expect(errors).toEqual([
      'reconcile failed, will retry',
      'reconcile failed, will retry',
      'dropping key after 2 retries',
    ]);
  });

  it('requeueAfterMs forgets the failure history and re-adds after exactly that delay', async () => {
    let fail = true;
    const r = new ScriptedReconciler(() => {
      if (fail) throw new Error('once');
      return { requeueAfterMs: 1000 };
    });
    const h = harness(r);
    h.queue.add('k');
    await h.controller.processNextWorkItem();
    fail = false;
    h.clock.advance(5);
    await h.controller.processNextWorkItem();
    expect(h.queue.numRequeues('k')).toBe(0);
    h.clock.advance(999);
    expect(h.queue.len()).toBe(0);
    h.clock.advance(1);
    expect(h.queue.len()).toBe(1);
    expect(
      await metric(h.registry, 'ts_kcm_reconcile_total', {
        controller: 'test-controller',
        result: 'requeue_after',
      }),
    ).toBe(1);
    expect(
      await metric(h.registry, 'ts_kcm_reconcile_total', {
        controller: 'test-controller',
        result: 'success',
      }),
    ).toBe(0);
  });

  it('returns false once the queue is shut down', async () => {
    const h = harness(new ScriptedReconciler(() => undefined));
    h.queue.shutDown();
    expect(await h.controller.processNextWorkItem()).toBe(false);
  });

  it('records reconcile time from the clock', async () => {
    const h = harness(
      new ScriptedReconciler(async () => {
        h.clock.advance(250);
      }),
    );
    h.queue.add('k');
    await h.controller.processNextWorkItem();
    expect(
      await metric(
        h.registry,
        'ts_kcm_reconcile_time_seconds',
        { controller: 'test-controller' },
        'ts_kcm_reconcile_time_seconds_sum',
      ),
    ).toBeCloseTo(0.25, 9);
  });
});

describe('Controller.run', () => {
  it('runs N workers concurrently, never two on one key, and on abort waits for in-flight reconciles', async () => {
    const release: (() => void)[] = [];
    let active = 0;
    let maxActive = 0;
    const r = new ScriptedReconciler(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise<void>((resolve) => release.push(resolve));
      active--;
    });
    const h = harness(r, { workers: 3 });
    const ac = new AbortController();
    let finished = false;
    const running = h.controller.run(ac.signal).then(() => (finished = true));
    for (const k of ['a', 'b', 'c', 'd']) h.queue.add(k);
    await tick();
    expect(r.calls).toEqual(['a', 'b', 'c']);
    h.queue.add('a'); // a is in flight: must wait for its done
    await tick();
    expect(r.calls).toEqual(['a', 'b', 'c']);

    ac.abort();
    await tick();
    expect(finished).toBe(false);
    for (const done of release.splice(0)) done();
    await running;
    expect(finished).toBe(true);
    expect(maxActive).toBe(3);
    // d (queued) and the re-add of a were not started after the abort.
    expect(r.calls).toEqual(['a', 'b', 'c']);
    expect(h.logs.map((l) => l.msg)).toEqual([
      'starting workers',
      'shutting down, waiting for in-flight reconciles',
      'workers stopped',
    ]);
  });

  it('under load reconciles every key after its last add, one worker per key at a time', async () => {
    let events = 0;
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    const inFlight = new Set<string>();
    const overlaps: string[] = [];
    const r = new ScriptedReconciler(async (key, call) => {
      if (inFlight.has(key)) overlaps.push(key);
      inFlight.add(key);
      lastStart.set(key, events++);
      for (let i = 0; i < call % 5; i++) await tick();
      inFlight.delete(key);
      if (call % 7 === 0) throw new Error('flaky');
    });
    const h = harness(r, { workers: 4 });
    const ac = new AbortController();
    const running = h.controller.run(ac.signal);
    for (let i = 0; i < 600; i++) {
      const key = `ns/k${(i * 37) % 50}`;
      lastAdd.set(key, events++);
      h.queue.add(key);
      if (i % 10 === 0) await tick();
    }
    // Let work and the 5 ms..n ms retries settle: move the fake clock on while anything is pending.
    for (
      let round = 0;
      round < 1000 && (h.queue.len() > 0 || h.queue.processingCount() > 0 || h.queue.waitingCount() > 0);
      round++
    ) {
      await tick();
      h.clock.advance(10);
    }
    ac.abort();
    await running;
    expect(overlaps).toEqual([]);
    const stale = [...lastAdd]
      .filter(([key, added]) => (lastStart.get(key) ?? -1) < added)
      .map(([key]) => key);
    expect(stale).toEqual([]);
  });

  it('has no drain timeout of its own: waits for the in-flight reconcile until cancel aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const r = new ScriptedReconciler(
      (_key, _call, signal) =>
        new Promise<void>((_resolve, reject) => {
          seen = signal;
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        }),
    );
    const h = harness(r, { workers: 1 });
    const stop = new AbortController();
    const cancel = new AbortController();
    let finished = false;
    const running = h.controller.run(stop.signal, cancel.signal).then(() => (finished = true));
    h.queue.add('stuck');
    h.queue.add('queued-behind');
    await tick();
    stop.abort();
    await tick();
    h.clock.advance(3_600_000); // no timer of its own: an hour later it still waits
    await tick();
    expect(finished).toBe(false);
    expect(seen?.aborted).toBe(false);
    cancel.abort(new Error('lease lost'));
    await running;
    expect(r.calls).toEqual(['stuck']); // queued keys are not worked off after stop
    expect(h.logs.at(-1)).toEqual({
      level: 'info',
      msg: 'workers stopped',
      meta: { controller: 'test-controller' },
    });
  });

  it('returns promptly when the signal is already aborted, and refuses a second run', async () => {
    const h = harness(new ScriptedReconciler(() => undefined));
    await h.controller.run(AbortSignal.abort());
    expect(h.clock.pendingTimers()).toBe(0);
    await expect(h.controller.run(new AbortController().signal)).rejects.toThrow(
      'controller test-controller: run() called twice',
    );
  });

  it('rejects a worker count below one', () => {
    expect(() => harness(new ScriptedReconciler(() => undefined), { workers: 0 })).toThrow(
      'controller test-controller: workers must be a positive integer, got 0',
    );
  });
});
