/**
 * Package client: REST access to the apiserver with throttling, typed errors and metrics.
 *
 * - Contracts: `KubeClient`, `ResourceClient`, `Resources` catalogue (types.ts); `ApiError`
 *   and `is*` predicates, `new*` constructors with the apiserver's wording (errors.ts).
 * - Real client: `loadKubeConfig` / `findKubeConfigSource` (config.ts), then
 *   `createKubeClient(kc, { qps, burst, registry, logger, userAgent })` (client.ts).
 * - Helpers: `retryOnConflict` (retry.ts); `mergePatch`, `strategicMergePatch`, `jsonPatch`,
 *   `applyPatch` (patch.ts).
 * - Unit tests: `FakeKubeClient` with recorded `actions`, reactors and an `ObjectTracker`
 *   (fake.ts, tracker.ts).
 */
export * from './types.js';
export * from './errors.js';

export { createKubeClient, RestKubeClient, parseWatchLine } from './client.js';
export type { KubeClientOptions } from './client.js';
export {
  findKubeConfigSource,
  loadKubeConfig,
  kubeConfigFrom,
  tokenFileOf,
  KubeConfig,
  KubeConfigNotFoundError,
  serviceAccountDir,
} from './config.js';
export type { KubeConfigSource } from './config.js';
export { fencedClient } from './fence.js';
export { checkKubeConfig, KubeConfigError } from './preflight.js';
export type { KubeConfigLike, Cluster, User, Context } from './kubeconfig.js';
export { retryOnConflict, retryOnError, defaultRetry, defaultBackoff } from './retry.js';
export type { Backoff, RetryOptions } from './retry.js';
export { mergePatch, strategicMergePatch, jsonPatch, applyPatch } from './patch.js';
export { newThrottle, defaultQPS, defaultBurst } from './throttle.js';
export type { Throttle } from './throttle.js';
export { ServiceAccountTokenSource, SERVICE_ACCOUNT_TOKEN_SECONDS } from './satoken.js';
export type { ServiceAccountTokenOptions } from './satoken.js';
export type { TokenSource } from './connection.js';
export { newClientMetrics } from './metrics.js';
export type { ClientMetrics } from './metrics.js';
export { resourcePath, listQuery, watchQuery, patchContentTypes } from './url.js';
export { parseRetryAfter, defaultMaxRetries, defaultRequestTimeoutMs } from './transport.js';

export { FakeKubeClient } from './fake.js';
export type { FakeAction, FakeVerb, Reactor, FakeKubeClientOptions } from './fake.js';
export { ObjectTracker } from './tracker.js';
export {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  PatchError,
  strategicListKeys,
} from './patchapply.js';
export type { JsonPatchOp } from './patchapply.js';
export { labelSelectorMatcher, fieldSelectorMatcher } from './selectors.js';
