import { describe, expect, it } from '@jest/globals';
import { bucketSettings, newThrottle } from './throttle.js';

describe('bucketSettings', () => {
  // Bottleneck adds `amount` once per heartbeat, so the steady rate is amount per heartbeat.
  const rate = (s: ReturnType<typeof bucketSettings>) =>
    (s.reservoirIncreaseAmount * 1000) / s.heartbeatInterval;

  it('kube-controller-manager defaults: 20 qps, burst 30', () => {
    expect(bucketSettings(20, 30)).toEqual({
      reservoir: 30,
      reservoirIncreaseMaximum: 30,
      reservoirIncreaseAmount: 1,
      reservoirIncreaseInterval: 49,
      heartbeatInterval: 50,
    });
  });

  it.each([
    [1, 1],
    [5, 10],
    [20, 30],
    [50, 100],
    [100, 200],
    [1000, 1000],
  ])('qps %d burst %d: steady rate equals qps, bucket holds burst', (qps, burst) => {
    const s = bucketSettings(qps, burst);
    expect(rate(s)).toBeCloseTo(qps, 5);
    expect(s.reservoir).toBe(burst);
    expect(s.reservoirIncreaseMaximum).toBe(burst);
    expect(Number.isInteger(s.reservoirIncreaseAmount)).toBe(true);
    expect(s.reservoirIncreaseInterval).toBeLessThan(s.heartbeatInterval);
  });

  it('a fractional qps still gives whole tokens', () => {
    const s = bucketSettings(0.5, 1);
    expect(s).toMatchObject({ reservoirIncreaseAmount: 1, heartbeatInterval: 2000 });
  });

  it('rejects a non-positive qps', () => {
    expect(() => bucketSettings(0, 1)).toThrow('qps must be positive, got 0');
  });
});

describe('newThrottle', () => {
  it('qps <= 0 means no throttling', async () => {
    const t = newThrottle(0, 0);
    await expect(t.acquire()).resolves.toBe(0);
  });

  it('hands out the burst without waiting for a refill', async () => {
    // 1 qps refills one token per second: if the bucket did not start full, 5 acquires would take 4 s and time out the test.
    const t = newThrottle(1, 5);
    for (let i = 0; i < 5; i++) await t.acquire();
    await t.close();
  });

  it('makes the request after the burst wait for a refill', async () => {
    // One token every 10 s: the third acquire cannot resolve within a few event-loop turns.
    const t = newThrottle(0.1, 2);
    await t.acquire();
    await t.acquire();
    let third = 'pending';
    const p = t.acquire().then(
      () => (third = 'resolved'),
      () => (third = 'dropped'),
    );
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(third).toBe('pending');
    await t.close();
    await p;
    expect(third).toBe('dropped');
  });
});
