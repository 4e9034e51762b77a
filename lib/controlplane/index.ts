/**
 * Package controlplane: a real local kube-apiserver + etcd (and optionally kube-scheduler
 * and kube-controller-manager) for integration tests, `npm start` and benchmarks.
 */
export {
  ControlPlane,
  ComponentStartError,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_READY_TIMEOUT_MS,
  type ComponentStatus,
  type ControlPlaneOptions,
} from './controlplane.js';
export { DEFAULT_SERVICE_CLUSTER_IP_RANGE } from './flags.js';
export { issueClientCertificate } from './credentials.js';
export { freePorts } from './ports.js';
export {
  cachedBinDir,
  locateBinaries,
  pinnedVersions,
  projectRoot,
  type PinnedVersions,
} from './binaries.js';
export type { ComponentName, StartupFigures } from './state.js';
