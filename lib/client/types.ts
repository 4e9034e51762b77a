import type { KubeList, KubeObject } from '../api/index.js';

/** Identifies a REST resource: enough to build its URL and to name it in messages and metrics. */
/**
 * A resource the client, informers and RBAC can name. `T` is the object type it holds:
 * `client.resource(ref)` and `informerFor(ref)` infer it (see sdk's `resourceRef<T>()`).
 */
export interface ResourceRef<T extends KubeObject = KubeObject> {
  group: string; // '' for the core group
  version: string;
  resource: string; // plural, lower case: 'pods', 'servicecidrs'
  kind: string;
  namespaced: boolean;
  /** Type-level only, never set: carries T (a method, so refs of related types stay assignable). */
  __objectType?(obj: T): void;
}

/** The resources ts-kcm uses, defined once. */
export const Resources = {
  pods: { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true },
  services: { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true },
  namespaces: { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false },
  nodes: { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false },
  configmaps: { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true },
  coreEvents: { group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  events: { group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', namespaced: true },
  leases: {
    group: 'coordination.k8s.io',
    version: 'v1',
    resource: 'leases',
    kind: 'Lease',
    namespaced: true,
  },
  serviceCIDRs: {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'servicecidrs',
    kind: 'ServiceCIDR',
    namespaced: false,
  },
  ipAddresses: {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'ipaddresses',
    kind: 'IPAddress',
    namespaced: false,
  },
  resourceClaims: {
    group: 'resource.k8s.io',
    version: 'v1',
    resource: 'resourceclaims',
    kind: 'ResourceClaim',
    namespaced: true,
  },
  resourceClaimTemplates: {
    group: 'resource.k8s.io',
    version: 'v1',
    resource: 'resourceclaimtemplates',
    kind: 'ResourceClaimTemplate',
    namespaced: true,
  },
  deviceClasses: {
    group: 'resource.k8s.io',
    version: 'v1',
    resource: 'deviceclasses',
    kind: 'DeviceClass',
    namespaced: false,
  },
  resourceSlices: {
    group: 'resource.k8s.io',
    version: 'v1',
    resource: 'resourceslices',
    kind: 'ResourceSlice',
    namespaced: false,
  },
} as const satisfies Record<string, ResourceRef>;

export function apiVersionOf(ref: ResourceRef): string {
  return ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
}

/** Every request takes an AbortSignal: aborting it cancels the request in flight (or before it is sent). */
export interface RequestOptions {
  signal?: AbortSignal;
}

export type GetOptions = RequestOptions;

/** The object fields a KEP-5866 shardSelector can hash (FNV-1a 64-bit of the field's value). */
export type ShardField = 'object.metadata.uid' | 'object.metadata.namespace';

export interface ListOptions extends RequestOptions {
  namespace?: string; // omitted: all namespaces (or a cluster-scoped resource)
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * KEP-5866 (alpha in 1.36, gate ShardedListAndWatch): `shardRange(object.metadata.uid, '0x…', '0x…')`
   * joined by `||`. A server that honours it echoes it in the list's metadata.shardInfo.selector;
   * one that does not ignores it and returns everything (see lib/sharding/selector.ts).
   */
  shardSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'NotOlderThan' | 'Exact';
  /** Ask for PartialObjectMetadata(List) instead of full objects. */
  metadataOnly?: boolean;
}

export interface WatchOptions extends Omit<ListOptions, 'limit' | 'continue' | 'signal'> {
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
  sendInitialEvents?: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T = KubeObject> {
  type: WatchEventType;
  /** For ERROR events this is a metav1.Status. */
  object: T;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export interface WriteOptions extends RequestOptions {
  namespace?: string;
  subresource?: string; // 'status', 'finalizers', ...
  fieldManager?: string;
  dryRun?: boolean;
}

export interface PatchOptions extends WriteOptions {
  type: PatchType;
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean;
}

export interface DeleteOptions extends RequestOptions {
  namespace?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  gracePeriodSeconds?: number;
}

/** Typed access to one resource. Errors are ApiError (see errors.ts). */
export interface ResourceClient<T extends KubeObject = KubeObject> {
  readonly ref: ResourceRef;
  get(name: string, namespace?: string, opts?: GetOptions): Promise<T>;
  list(opts?: ListOptions): Promise<KubeList<T>>;
  /** A watch stream; ends when the server closes it or `signal` aborts. Each event is parsed JSON. */
  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>>;
  create(obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT; carries obj.metadata.resourceVersion, so a stale copy fails with Conflict. */
  update(obj: T, opts?: WriteOptions): Promise<T>;
  patch(name: string, patch: unknown, opts: PatchOptions): Promise<T>;
  delete(name: string, opts?: DeleteOptions): Promise<void>;
}

/** The client every controller and the machinery use. */
export interface KubeClient {
  resource<T extends KubeObject = KubeObject>(ref: ResourceRef<T>): ResourceClient<T>;
  /** GET /version of the server. */
  serverVersion(): Promise<{ gitVersion: string; major: string; minor: string }>;
  /** A raw request for what the typed surface lacks (e.g. /readyz). Path starts with '/'. */
  requestRaw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
}

/** `resource.group` (or just `resource` for the core group), as the apiserver names it in messages. */
export function qualifiedResource(ref: Pick<ResourceRef, 'group' | 'resource'>): string {
  return ref.group === '' ? ref.resource : `${ref.resource}.${ref.group}`;
}
