import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from './ratelimiter.js';
import { newRateLimitingQueue } from './ratelimiting.js';

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles from the base per failure of a key and caps at the max', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>(5, 1000);
    const delays = Array.from({ length: 10 }, () => rl.when('a'));
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    expect(rl.numRequeues('a')).toBe(10);
  });

  it('counts keys independently and starts over after forget', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>();
    expect([rl.when('a'), rl.when('a'), rl.when('b')]).toEqual([5, 10, 5]);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.numRequeues('b')).toBe(1);
    expect(rl.when('a')).toBe(5);
  });

  it('defaults to 5 ms and 1000 s and stays at the cap far beyond float range', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>();
    let last = 0;
    for (let i = 0; i < 2000; i++) last = rl.when('a');
    expect(last).toBe(1_000_000);
    // 5 ms * 2^17 = 655 s, 2^18 would be 1311 s: the 19th failure is the first capped one.
    const fresh = new ItemExponentialFailureRateLimiter<string>();
    const seq = Array.from({ length: 19 }, () => fresh.when('k'));
    expect(seq[17]).toBe(655_360);
    expect(seq[18]).toBe(1_000_000);
  });
});

describe('BucketRateLimiter', () => {
  it('refills on the monotonic clock: a wall-clock step back does not stall the bucket', () => {
    const clock = new FakeClock();
    const rl = new BucketRateLimiter<string>(10, 100, clock);
    for (let i = 0; i < 100; i++) rl.when('k');
    clock.stepWall(-3_600_000);
    clock.advance(1_000);
    const delays = Array.from({ length: 10 }, () => rl.when('k'));
    expect(delays).toEqual(Array(10).fill(0));
  });

  it('gives a full burst for free, then reserves future tokens at qps', () => {
    const clock = new FakeClock();
    const rl = new BucketRateLimiter<string>(10, 100, clock);
    const first100 = Array.from({ length: 100 }, (_, i) => rl.when(`k${i}`));
    expect(first100.every((d) => d === 0)).toBe(true);
    expect(rl.when('k100')).toBe(100);
    expect(rl.when('k101')).toBe(200);
    expect(rl.when('k102')).toBe(300);
  });

  it('refills with time, never above the burst', () => {
    const clock = new FakeClock();
    const rl = new BucketRateLimiter<string>(10, 100, clock);
    for (let i = 0; i < 102; i++) rl.when('x'); // tokens now -2
    clock.advance(100); // +1 -> -1
    expect(rl.when('x')).toBe(200); // -2 -> 200 ms
    clock.advance(3_600_000); // refill, capped at 100
    const burst = Array.from({ length: 100 }, () => rl.when('x'));
    expect(burst.every((d) => d === 0)).toBe(true);
    expect(rl.when('x')).toBe(100);
  });

  it('does not count requeues per key', () => {
    const rl = new BucketRateLimiter<string>(10, 100, new FakeClock());
    rl.when('a');
    expect(rl.numRequeues('a')).toBe(0);
  });
});

describe('MaxOfRateLimiter and defaultControllerRateLimiter', () => {
  it('waits for the slowest limiter and lets every limiter see each failure', () => {
    const clock = new FakeClock();
    const exp = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    const bucket = new BucketRateLimiter<string>(10, 1, clock);
    const rl = new MaxOfRateLimiter<string>(exp, bucket);
    expect(rl.when('a')).toBe(5); // bucket had its one token
    expect(rl.when('a')).toBe(100); // bucket empty: 100 ms beats 10 ms
    expect(exp.numRequeues('a')).toBe(2);
    expect(rl.numRequeues('a')).toBe(2);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
  });

  it('default: 5 ms for a first failure; the 101st failure in one instant waits 100 ms for the bucket', () => {
    const clock = new FakeClock();
    const rl = defaultControllerRateLimiter<string>(clock);
    const delays = Array.from({ length: 100 }, (_, i) => rl.when(`key-${i}`));
    expect(new Set(delays)).toEqual(new Set([5]));
    expect(rl.when('key-100')).toBe(100);
    expect(rl.when('key-0')).toBe(200); // exponential says 10, bucket says 200
    expect(rl.numRequeues('key-0')).toBe(2);
  });
});

describe('RateLimitedQueue', () => {
  it('addRateLimited delays by the limiter; forget and numRequeues go to the limiter', () => {
    const clock = new FakeClock();
    const q = newRateLimitingQueue<string>({ name: 'rl', clock });
    q.addRateLimited('a');
    expect(q.numRequeues('a')).toBe(1);
    clock.advance(4);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    const k = q.tryGet() as string;
    q.done(k);
    q.addRateLimited('a'); // second failure: 10 ms
    clock.advance(9);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
  });

  it('uses the rate limiter it is given', () => {
    const clock = new FakeClock();
    const q = newRateLimitingQueue<string>({
      name: 'rl',
      clock,
      rateLimiter: new ItemExponentialFailureRateLimiter(1000, 60_000),
    });
    q.addRateLimited('a');
    clock.advance(999);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
  });
});
