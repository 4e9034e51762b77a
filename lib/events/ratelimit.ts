import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock/index.js';

/** client-go's spam filter defaults: burst 25, then one event per 5 minutes per (source, object). */
export const DEFAULT_SPAM_BURST = 25;
export const DEFAULT_SPAM_REFILL_MS = 5 * 60_000;
/** client-go's maxLruCacheEntries: bounds memory when many objects get events. */
const MAX_BUCKETS = 4096;

interface Bucket {
  tokens: number;
  last: number;
}

/** Token buckets keyed by (source, regarding); refilled lazily from the clock. */
export class SpamFilter {
  private readonly buckets = new LRUCache<string, Bucket>({ max: MAX_BUCKETS });

  constructor(
    private readonly clock: Clock,
    private readonly burst = DEFAULT_SPAM_BURST,
    private readonly refillMs = DEFAULT_SPAM_REFILL_MS,
  ) {}

  /** Take a token for `key`; false means drop the event. */
  allow(key: string): boolean {
    const now = this.clock.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, last: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.last) / this.refillMs);
    b.last = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(key, b);
    return ok;
  }
}
