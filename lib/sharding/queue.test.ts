import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { Controller } from '../controller/controller.js';
import type { Logger, LogMeta } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';
import { newRateLimitingQueue } from '../workqueue/index.js';
import { keyAbortingReconciler, shardedQueue } from './queue.js';
import { fakeSharding } from './testing.js';

function setup(owned: string[], cached: string[]) {
  const clock = new FakeClock();
  const inner = newRateLimitingQueue<string>({ name: 'q', clock });
  const { sharding, move: change } = fakeSharding(owned);
  const registry = newRegistry();
  const q = shardedQueue(inner, sharding, { controller: 'c', keys: () => cached, registry });
  return { q, inner, change, registry, clock };
}

describe('shardedQueue', () => {
  it('is the queue itself without a ring', () => {
    const inner = newRateLimitingQueue<string>({ name: 'q', clock: new FakeClock() });
    const q = shardedQueue(inner, undefined, { controller: 'c', keys: () => [] });
    q.add('x');
    expect(inner.len()).toBe(1);
    expect(q.keySignal('x')).toBeUndefined();
  });

  it('admits only owned keys, by add, addAfter and addRateLimited', () => {
    const t = setup(['a'], []);
    t.q.add('a');
    t.q.add('b');
    t.q.addAfter('b', 10);
    t.q.addRateLimited('b');
    t.clock.advance(10_000);
    expect(t.inner.len()).toBe(1);
  });

  it('skips a key lost while queued, and re-enqueues newly owned keys from the cache', async () => {
    const t = setup(['a', 'b'], ['a', 'b', 'c']);
    t.q.add('a');
    t.q.add('b');
    t.change(['b', 'c']); // a lost, c gained (b kept: not re-added, still queued once)
    expect(await t.q.get()).toBe('b');
    t.q.done('b');
    expect(await t.q.get()).toBe('c');
    t.q.done('c');
    expect(t.inner.len()).toBe(0);
  });

  it('aborts the signal of an in-flight key when it moves away, not of one that stays', async () => {
    const t = setup(['a', 'b'], ['a', 'b']);
    t.q.add('a');
    t.q.add('b');
    const first = (await t.q.get())!;
    const second = (await t.q.get())!;
    const sa = t.q.keySignal('a')!;
    const sb = t.q.keySignal('b')!;
    t.change(['b']);
    expect(sa.aborted).toBe(true);
    expect(sb.aborted).toBe(false);
    t.q.done(first);
    t.q.done(second);
    expect(t.q.keySignal('a')).toBeUndefined();
  });

  it('exports ts_kcm_shard_keys_owned from the cache', async () => {
    const t = setup(['a', 'c'], ['a', 'b', 'c']);
    expect(await t.registry.getSingleMetricAsString('ts_kcm_shard_keys_owned')).toContain(
      'ts_kcm_shard_keys_owned{controller="c"} 2',
    );
    t.change([]);
    expect(await t.registry.getSingleMetricAsString('ts_kcm_shard_keys_owned')).toContain(
      'ts_kcm_shard_keys_owned{controller="c"} 0',
    );
  });
});

/** Log lines with the verbosity they were logged at (error/warn print at any verbosity). */
function recordingLogger(lines: { level: string; v: number; msg: string; meta?: LogMeta }[], v = 0): Logger {
  return {
    error: (msg, meta) => void lines.push({ level: 'error', v, msg, meta }),
    warn: (msg, meta) => void lines.push({ level: 'warn', v, msg, meta }),
    info: (msg, meta) => void lines.push({ level: 'info', v, msg, meta }),
    debug: (msg, meta) => void lines.push({ level: 'info', v: 4, msg, meta }),
    child: () => recordingLogger(lines, v),
    v: (level) => recordingLogger(lines, level),
  };
}

async function reconcileTotals(registry: Registry): Promise<Record<string, number>> {
  const data = await registry.getSingleMetric('ts_kcm_reconcile_total')!.get();
  return Object.fromEntries(data.values.map((v) => [String(v.labels.result), v.value]));
}

describe('a reconcile aborted because its key moved', () => {
  /** A controller over a sharded queue whose reconcile of `a` waits for its signal, then throws its reason. */
  function setupMoved() {
    const clock = new FakeClock();
    const registry = newRegistry();
    const inner = newRateLimitingQueue<string>({ name: 'q', clock, registry });
    const { sharding, move } = fakeSharding(['a', 'b']);
    const queue = shardedQueue(inner, sharding, { controller: 'c', keys: () => ['a', 'b'], registry });
    const started: string[] = [];
    const reconciler = keyAbortingReconciler(
      {
        reconcile: (key, signal) => {
          started.push(key);
          if (key === 'b') return Promise.reject(new Error('apiserver said no'));
          return new Promise((_resolve, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
          );
        },
      },
      queue,
    );
    const logs: { level: string; v: number; msg: string; meta?: LogMeta }[] = [];
    const controller = new Controller({
      name: 'c',
      queue,
      reconciler,
      workers: 1,
      logger: recordingLogger(logs),
      registry,
      clock,
    });
    return { clock, registry, inner, queue, move, started, logs, controller };
  }

  it('counts result="shard_moved", not an error; logs at V(2); does not requeue', async () => {
    const t = setupMoved();
    expect(await reconcileTotals(t.registry)).toEqual({
      success: 0,
      error: 0,
      requeue_after: 0,
      shard_moved: 0,
    });
    t.queue.add('a');
    const step = t.controller.processNextWorkItem();
    await new Promise((r) => setImmediate(r));
    expect(t.started).toEqual(['a']);
    t.move(['b']); // a moves away while in flight: its signal aborts, the reconcile throws
    await step;
    expect(await reconcileTotals(t.registry)).toEqual({
      success: 0,
      error: 0,
      requeue_after: 0,
      shard_moved: 1,
    });
    expect((await t.registry.getSingleMetric('ts_kcm_reconcile_errors_total')!.get()).values[0]!.value).toBe(
      0,
    );
    expect(t.logs.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    expect(t.logs).toEqual([
      {
        level: 'info',
        v: 2,
        msg: 'reconcile stopped: key moved to another replica',
        meta: { controller: 'c', key: 'a', error: 'shard key a moved to another replica' },
      },
    ]);
    t.clock.advance(60_000); // no backoff re-add pending
    expect(t.inner.len()).toBe(0);
    expect(t.inner.waitingCount()).toBe(0);
    expect(t.inner.numRequeues('a')).toBe(0);
  });

  it('a failure of a key that stays is still an error, retried with backoff', async () => {
    const t = setupMoved();
    t.queue.add('b');
    await t.controller.processNextWorkItem();
    expect(await reconcileTotals(t.registry)).toMatchObject({ error: 1, shard_moved: 0 });
    expect(t.logs.map((l) => [l.level, l.msg])).toEqual([['error', 'reconcile failed, will retry']]);
    expect(t.inner.numRequeues('b')).toBe(1);
  });
});
