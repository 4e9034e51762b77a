/**
 * Package manager: runs the enabled controllers like kube-controller-manager — --controllers
 * selection, Lease leader election, shared informers started once, /healthz /readyz /metrics,
 * events, and graceful shutdown.
 */
export { Manager, DEFAULT_MANAGER_OPTIONS, type ManagerOptions, type ManagerDeps } from './manager.js';
export { resolveControllers } from './controllers.js';
export { parseDuration, formatDuration } from './duration.js';
export { parseBindAddress, formatAddress, type BindAddress } from './address.js';
export { HealthChecks, ping, type HealthCheck } from './healthz.js';
