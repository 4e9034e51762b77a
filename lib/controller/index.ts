/**
 * Package controller: the Reconciler contract, the worker runner that drives a reconciler
 * from a rate-limited work queue, and the registry of controller plug-ins.
 */
export * from './types.js';
export { Controller } from './controller.js';
export type { ControllerOptions } from './controller.js';
export { ControllerRegistry, resolveEnabled, DEFAULT_CONTROLLERS_FLAG } from './registry.js';
export { RECONCILE_METRIC_NAMES, RECONCILE_OUTCOMES, RECONCILE_TIME_BUCKETS } from './metrics.js';
export type { ReconcileOutcome } from './metrics.js';
