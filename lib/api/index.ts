/**
 * Package api: the Kubernetes object shapes ts-kcm reads and writes, as plain JSON.
 *
 * Objects travel as the JSON the apiserver sends (timestamps are RFC 3339 strings), so
 * these are our own minimal interfaces rather than client-node's model classes, whose
 * declared `Date` fields would not match what a raw JSON client holds.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
  /** KEP-5866: present only when the server applied the request's shardSelector. */
  shardInfo?: { selector?: string };
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: ListMeta;
  items: T[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/** metav1.Status, the body of most error responses and of watch ERROR events. */
export interface Status {
  apiVersion?: string;
  kind?: 'Status';
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; retryAfterSeconds?: number; causes?: unknown[] };
}

// ---- networking.k8s.io/v1 ----

export interface ServiceCIDR extends KubeObject {
  spec?: { cidrs?: string[] };
  status?: { conditions?: Condition[] };
}

export interface IPAddress extends KubeObject {
  spec?: { parentRef?: { group?: string; resource: string; namespace?: string; name: string } };
}

// ---- core/v1 ----

export interface PodResourceClaim {
  name: string;
  resourceClaimName?: string | null;
  resourceClaimTemplateName?: string | null;
}

export interface PodResourceClaimStatus {
  name: string;
  resourceClaimName?: string | null;
}

export interface Pod extends KubeObject {
  spec?: {
    nodeName?: string;
    resourceClaims?: PodResourceClaim[];
    containers?: unknown[];
    [key: string]: unknown;
  };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    resourceClaimStatuses?: PodResourceClaimStatus[];
    [key: string]: unknown;
  };
}

export interface Service extends KubeObject {
  spec?: { clusterIP?: string; clusterIPs?: string[]; ports?: unknown[]; [key: string]: unknown };
}

// ---- resource.k8s.io/v1 ----

export interface ResourceClaimConsumerReference {
  apiGroup?: string;
  resource: string;
  name: string;
  uid: string;
}

export interface ResourceClaim extends KubeObject {
  spec?: Record<string, unknown>;
  status?: {
    allocation?: Record<string, unknown> | null;
    reservedFor?: ResourceClaimConsumerReference[];
    devices?: unknown[];
    [key: string]: unknown;
  };
}

export interface ResourceClaimTemplate extends KubeObject {
  spec: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: Record<string, unknown>;
  };
}

// ---- coordination.k8s.io/v1 ----

export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

// ---- events.k8s.io/v1 ----

export interface EventSeries {
  count: number;
  lastObservedTime: string;
}

export interface Event extends KubeObject {
  eventTime: string;
  series?: EventSeries;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  regarding: {
    apiVersion?: string;
    kind?: string;
    namespace?: string;
    name?: string;
    uid?: string;
    resourceVersion?: string;
  };
  related?: Event['regarding'];
  note?: string;
  type: 'Normal' | 'Warning';
}

export { formatMicroTime, formatTime, parseTime } from './time.js';
