/** Package workqueue: client-go work-queue semantics (dedup, delays, rate limits, metrics). */
export * from './types.js';
export { Queue, newQueue } from './queue.js';
export type { QueueOptions } from './queue.js';
export { DelayedQueue, newDelayingQueue } from './delaying.js';
export { RateLimitedQueue, newRateLimitingQueue } from './ratelimiting.js';
export type { RateLimitingQueueOptions } from './ratelimiting.js';
export {
  ItemExponentialFailureRateLimiter,
  BucketRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from './ratelimiter.js';
export { QUEUE_DURATION_BUCKETS, WORKQUEUE_METRIC_NAMES } from './metrics.js';
export { RecordingQueue } from './fake.js';
