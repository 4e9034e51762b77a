/**
 * The queue controllers use: a delaying queue plus a rate limiter that decides how long a
 * failed key waits before its retry (addRateLimited) and counts its failures until forget().
 */
import { DelayedQueue } from './delaying.js';
import type { QueueOptions } from './queue.js';
import { defaultControllerRateLimiter } from './ratelimiter.js';
import type { RateLimiter, RateLimitingQueue } from './types.js';

export interface RateLimitingQueueOptions<K> extends QueueOptions {
  /** Default: defaultControllerRateLimiter(clock), as client-go's controllers use. */
  rateLimiter?: RateLimiter<K>;
}

export class RateLimitedQueue<K = string> extends DelayedQueue<K> implements RateLimitingQueue<K> {
  readonly rateLimiter: RateLimiter<K>;

  constructor(opts: RateLimitingQueueOptions<K>) {
    super(opts);
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
  }

  addRateLimited(key: K): void {
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Stop tracking the key's failures; its next failure starts again from the base delay. */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.rateLimiter.numRequeues(key);
  }
}

export function newRateLimitingQueue<K = string>(opts: RateLimitingQueueOptions<K>): RateLimitedQueue<K> {
  return new RateLimitedQueue<K>(opts);
}
