/**
 * Package informer: list/watch reflectors, the indexed store, shared informers with
 * bounded fan-out to handlers, and the shared informer factory.
 */
export * from './types.js';
