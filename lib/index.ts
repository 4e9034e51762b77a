/**
 * ts-kcm: write and run Kubernetes controllers in TypeScript. This module is the public
 * library (package entry `ts-kcm`); everything not exported here or from `ts-kcm/testing`
 * is internal. The surface is listed in docs/api.md and pinned by an API snapshot test.
 */

// Writing a controller
export {
  defineController,
  generationChanged,
  hasLabels,
  rulesOf,
  controllingOwnerKeys,
  type ControllerSpec,
  type DefinedController,
  type ReconcileRequest,
  type ReconcileContext,
  type ObjectKey,
  type Predicate,
  type WatchSpec,
  type WriteRule,
  type WorkersFlag,
  type CacheReader,
  type CacheLookup,
  type NamespaceShardSelection,
} from './sdk/define.js';
export { resourceRef } from './sdk/resource.js';

// Running controllers
export { runManager, type RunManagerOptions } from './sdk/run.js';
export { Manager, DEFAULT_MANAGER_OPTIONS, type ManagerOptions, type ManagerDeps } from './manager/index.js';

// The lower-level controller API (what the built-in controllers use)
export {
  Controller,
  ControllerRegistry,
  resolveEnabled,
  type ControllerOptions,
  type ControllerDefinition,
  type ControllerContext,
  type ControllerFlag,
  type PolicyRule,
  type Reconciler,
  type ReconcileResult,
  type Runnable,
  type ShardingDeclaration,
  type ControllerSharding,
} from './controller/index.js';
// Sharding rings (ts-kcm run --sharding-ring): a ControllerDefinition's own queue joins in through shardedQueue.
export {
  shardedQueue,
  keyAbortingReconciler,
  namespaceShardKey,
  type KeySignals,
  type ShardedQueueOptions,
} from './sharding/index.js';

// API objects
export type {
  KubeObject,
  KubeList,
  ObjectMeta,
  OwnerReference,
  Condition,
  Status,
  Pod,
  Service,
  ServiceCIDR,
  IPAddress,
  ResourceClaim,
  ResourceClaimTemplate,
  Lease,
  Event,
} from './api/index.js';
export { formatTime, formatMicroTime, parseTime } from './api/index.js';

// Client
export {
  Resources,
  apiVersionOf,
  qualifiedResource,
  createKubeClient,
  loadKubeConfig,
  ApiError,
  isNotFound,
  isAlreadyExists,
  isConflict,
  isForbidden,
  isInvalid,
  isTooManyRequests,
  isGone,
  isNetworkError,
  retryOnConflict,
  retryOnError,
  mergePatch,
  strategicMergePatch,
  jsonPatch,
  applyPatch,
  ServiceAccountTokenSource,
  type ServiceAccountTokenOptions,
  type TokenSource,
  type KubeClient,
  type KubeClientOptions,
  type KubeConfigLike,
  type ResourceClient,
  type ResourceRef,
  type ListOptions,
  type ShardField,
  type WatchOptions,
  type WatchEvent,
  type WriteOptions,
  type PatchOptions,
  type PatchType,
  type DeleteOptions,
  type JsonPatchOp,
} from './client/index.js';

// Informers, listers, indexers
export {
  DefaultSharedInformerFactory,
  DeletedFinalStateUnknown,
  newIndexer,
  metaNamespaceKey,
  splitMetaNamespaceKey,
  NAMESPACE_INDEX,
  type SharedInformerFactory,
  type SharedIndexInformer,
  type Indexer,
  type IndexFunc,
  type InformerOptions,
  type InformerShard,
  type ShardFilter,
  type ResourceEventHandler,
  type HandlerRegistration,
} from './informer/index.js';

// Work queues
export {
  newQueue,
  newDelayingQueue,
  newRateLimitingQueue,
  defaultControllerRateLimiter,
  type RateLimitingQueue,
} from './workqueue/index.js';

// Events, time, logs, metrics
export { EventBroadcaster, type EventRecorder, type EventType } from './events/index.js';
export { RealClock, type Clock, type TimerHandle } from './clock/index.js';
export {
  createLogger,
  nopLogger,
  errorMessage,
  type Logger,
  type LoggerOptions,
  type LogMeta,
} from './log/index.js';
export { newRegistry, Registry, Counter, Gauge, Histogram } from './metrics/index.js';
