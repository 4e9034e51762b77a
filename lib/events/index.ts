/** Package events: an events.k8s.io/v1 recorder with dedup, aggregation and rate limiting. */
export * from './types.js';
