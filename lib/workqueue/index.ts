/** Package workqueue: client-go work-queue semantics (dedup, delays, rate limits, metrics). */
export * from './types.js';
