/** Package events: core/v1 and events.k8s.io/v1 recorders with dedup, aggregation and rate limiting. */
export * from './types.js';
export { EventBroadcaster, type EventBroadcasterOptions, type EventApi } from './broadcaster.js';
export { buildCoreEvent, AGGREGATE_MAX_EVENTS, AGGREGATE_PREFIX, type CoreEvent } from './core.js';
export { FakeEventRecorder, type RecordedEvent } from './fake.js';
export { buildEvent, referenceOf } from './event.js';
export { SpamFilter, DEFAULT_SPAM_BURST, DEFAULT_SPAM_REFILL_MS } from './ratelimit.js';
