/**
 * Package informer: list/watch reflectors, the indexed store, shared informers with
 * bounded fan-out to handlers, and the shared informer factory.
 */
export * from './types.js';
export { newIndexer, metaNamespaceKey, splitMetaNamespaceKey, namespaceIndexFunc, Store } from './store.js';
export type { KeyFunc } from './store.js';
export { DefaultSharedInformerFactory } from './factory.js';
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
