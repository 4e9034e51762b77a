/**
 * Package controller: the Reconciler contract, the worker runner that drives a reconciler
 * from a rate-limited work queue, and the registry of controller plug-ins.
 */
export * from './types.js';
