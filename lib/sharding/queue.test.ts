import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import { newRateLimitingQueue } from '../workqueue/index.js';
import { shardedQueue } from './queue.js';
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
