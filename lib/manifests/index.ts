/**
 * Package manifests: the in-cluster deployment of ts-kcm rendered from the code — RBAC from
 * what the enabled controllers declare, a hardened two-replica Deployment with leader
 * election, its Service, PodDisruptionBudget and Namespace, and manifests/ as a kustomize base.
 */
export {
  renderManifests,
  renderManifestsYaml,
  renderManifestFiles,
  manifestOptions,
  toYaml,
  GENERATED_HEADER,
  KIND_EXTRA_ARGS,
  KIND_IMAGE_TAG,
  type RenderInput,
} from './render.js';
export { DEFAULT_MANIFEST_OPTIONS, type KubeManifest, type ManifestOptions } from './types.js';
export {
  assertNoWildcards,
  clusterRules,
  leaseRules,
  managerClusterRules,
  mergeRules,
  type NamedPolicyRule,
} from './rbac.js';
export { deploymentArgs } from './workload.js';
