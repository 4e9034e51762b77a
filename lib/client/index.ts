/** Package client: REST access to the apiserver with throttling, typed errors and metrics. */
export * from './types.js';
export * from './errors.js';
