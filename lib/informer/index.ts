/**
 * Package informer: list/watch reflectors, the indexed store, shared informers with
 * bounded fan-out to handlers, and the shared informer factory.
 *
 * Data flows one way: reflector.ts (LIST pages of 500 or a WatchList stream, then WATCH
 * with bookmarks, resume, relist on 410, backoff 800 ms..30 s) -> shared-informer.ts
 * (transform, default strip managedFields; store.ts with indexes) -> fanout.ts (one
 * bounded ring, one cursor per handler, re-sync from the store when a handler falls
 * behind) -> handlers. factory.ts shares one informer per resource/namespace/selectors/
 * transform/metadataOnly. Unit tests drive reflectors with fake-list-watch.ts.
 */
export * from './types.js';
export { newIndexer, metaNamespaceKey, splitMetaNamespaceKey, namespaceIndexFunc, Store } from './store.js';
export type { KeyFunc } from './store.js';
export { DefaultSharedInformerFactory, DEFAULT_MIN_RESYNC_PERIOD_MS } from './factory.js';
export type { SharedInformerFactoryOptions } from './factory.js';
export {
  DefaultSharedIndexInformer,
  STRIP_MANAGED_FIELDS,
  IDENTITY_TRANSFORM,
  resourceLabel,
} from './shared-informer.js';
export type { SharedInformerOptions } from './shared-informer.js';
export { Reflector, INITIAL_EVENTS_END_ANNOTATION, WatchInactiveError } from './reflector.js';
export type { ListWatcher, ReflectorSink, ReflectorOptions } from './reflector.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { EventRing } from './fanout.js';
export { FakeSharedIndexInformer } from './fake.js';
