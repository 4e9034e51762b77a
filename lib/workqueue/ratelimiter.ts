/**
 * Rate limiters answer "how long until this key may be retried?". The defaults are
 * client-go's DefaultControllerRateLimiter: per-key exponential backoff (5 ms doubling to
 * 1000 s) combined, by taking the larger delay, with one token bucket shared by every key
 * (10 qps, burst 100) so a mass failure cannot turn into a retry storm.
 */
import { RealClock } from '../clock/index.js';
import type { Clock } from '../clock/index.js';
import type { RateLimiter } from './types.js';

/** Per-key backoff: base * 2^failures, capped at max. Failures are counted until forget(). */
export class ItemExponentialFailureRateLimiter<K = string> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();

  constructor(
    readonly baseDelayMs = 5, // client-go DefaultControllerRateLimiter
    readonly maxDelayMs = 1_000_000, // 1000 s, same source
  ) {}

  when(key: K): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    // 2^exp overflows to Infinity long before it could lose precision, and Math.min handles that.
    const delay = this.baseDelayMs * 2 ** exp;
    return Number.isFinite(delay) ? Math.min(delay, this.maxDelayMs) : this.maxDelayMs;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * One token bucket for all keys, in the manner of golang.org/x/time/rate's Reserve(): every
 * call takes a token now, even one not there yet (the balance may go negative), and the
 * answer is how long until that token will have been refilled. The bucket starts full.
 */
export class BucketRateLimiter<K = string> implements RateLimiter<K> {
  private tokens: number;
  private last: number;
  private readonly clock: Clock;

  constructor(
    readonly qps = 10, // client-go DefaultControllerRateLimiter
    readonly burst = 100, // same source
    clock?: Clock,
  ) {
    if (qps <= 0) throw new Error(`BucketRateLimiter: qps must be > 0, got ${qps}`);
    this.clock = clock ?? new RealClock();
    this.tokens = burst;
    this.last = this.clock.monotonicNow();
  }

  when(_key: K): number {
    const now = this.clock.monotonicNow();
    // A clock that went backwards refills nothing (x/time/rate does the same).
    const elapsedMs = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.qps) / 1000);
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return (-this.tokens * 1000) / this.qps;
  }

  /** The bucket does not track keys. */
  forget(_key: K): void {}

  numRequeues(_key: K): number {
    return 0;
  }
}

/** Asks every limiter and waits for the slowest; requeues are the largest any limiter counted. */
export class MaxOfRateLimiter<K = string> implements RateLimiter<K> {
  private readonly limiters: RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    if (limiters.length === 0) throw new Error('MaxOfRateLimiter needs at least one limiter');
    this.limiters = limiters;
  }

  when(key: K): number {
    // Every limiter must see the failure (the bucket must spend its token), so no short-circuit.
    let delay = 0;
    for (const l of this.limiters) delay = Math.max(delay, l.when(key));
    return delay;
  }

  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: K): number {
    let n = 0;
    for (const l of this.limiters) n = Math.max(n, l.numRequeues(key));
    return n;
  }
}

/** client-go's DefaultControllerRateLimiter: max(exponential 5 ms..1000 s, bucket 10 qps / burst 100). */
export function defaultControllerRateLimiter<K = string>(clock?: Clock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(
    new ItemExponentialFailureRateLimiter<K>(5, 1_000_000),
    new BucketRateLimiter<K>(10, 100, clock),
  );
}
