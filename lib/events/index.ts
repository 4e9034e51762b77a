/** Package events: an events.k8s.io/v1 recorder with dedup, aggregation and rate limiting. */
export * from './types.js';
export { EventBroadcaster, type EventBroadcasterOptions } from './broadcaster.js';
export { FakeEventRecorder, type RecordedEvent } from './fake.js';
export { buildEvent, referenceOf } from './event.js';
export { SpamFilter, DEFAULT_SPAM_BURST, DEFAULT_SPAM_REFILL_MS } from './ratelimit.js';
