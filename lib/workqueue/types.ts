/** client-go's workqueue contract: dedup, dirty/processing sets, delays and rate limits. */
export interface WorkQueue<K = string> {
  add(key: K): void;
  /**
   * Resolves with the next key, or undefined once the queue is shut down. After shutDown no
   * further keys are handed out, even queued ones (stop taking work; see queue.ts).
   */
  get(): Promise<K | undefined>;
  /** Mark a key processed; if it was re-added while processing it is queued again. */
  done(key: K): void;
  len(): number;
  shutDown(): void;
  /** Stop accepting keys, wait until every key handed out is done. */
  shutDownWithDrain(): Promise<void>;
  shuttingDown(): boolean;
}

export interface DelayingQueue<K = string> extends WorkQueue<K> {
  addAfter(key: K, delayMs: number): void;
}

export interface RateLimiter<K = string> {
  /** Delay before `key` may be retried (and records the failure). */
  when(key: K): number;
  forget(key: K): void;
  numRequeues(key: K): number;
}

export interface RateLimitingQueue<K = string> extends DelayingQueue<K> {
  addRateLimited(key: K): void;
  forget(key: K): void;
  numRequeues(key: K): number;
}
