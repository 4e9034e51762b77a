/** Names, API shapes and small predicates of service-lb-ipam-controller. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resourceRef, type Condition, type IPAddress, type KubeObject } from '../../lib/index.js';
import type { Family } from './pool.js';

export const CONTROLLER_NAME = 'service-lb-ipam-controller';
export const CONCURRENT_SYNCS_FLAG = 'concurrent-lb-ipam-syncs';
export const DEFAULT_CLASS_FLAG = 'lb-ipam-default-class';
export const RELEASE_HOLD_FLAG = 'lb-ipam-release-hold';
export const DEFAULT_WORKERS = 5;
export const DEFAULT_RELEASE_HOLD_MS = 10_000;

/** The loadBalancerClass this controller serves. */
export const LB_CLASS = 'lb.ts-kcm.io/ipam';
/** The upstream service controller's finalizer. */
export const LB_FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
export const IPS_ANNOTATION = 'lb.ts-kcm.io/load-balancer-ips';
export const POOL_ANNOTATION = 'lb.ts-kcm.io/address-pool';

export const MANAGED_BY_LABEL = 'ipaddress.kubernetes.io/managed-by';
export const MANAGED_BY = 'lb-ipam.ts-kcm.io';
export const FAMILY_LABEL = 'ipaddress.kubernetes.io/ip-family';
/** Set on an IPAddress whose Service let it go; it is held until the release hold ends. */
export const RELEASED_LABEL = 'lb.ts-kcm.io/released';
export const RELEASED_AT_ANNOTATION = 'lb.ts-kcm.io/released-at';

export const POOL_METRIC = 'ts_kcm_lb_ipam_pool_addresses';

export const loadBalancerIPPools = resourceRef({
  group: 'lb.ts-kcm.io',
  version: 'v1alpha1',
  resource: 'loadbalancerippools',
  kind: 'LoadBalancerIPPool',
  namespaced: false,
});

const CRD_FILE = join('manifests', 'crds', 'lb.ts-kcm.io_loadbalancerippools.yaml');

/**
 * The LoadBalancerIPPool CRD file: manifests/ sits at the package root, two folders above this
 * file in the sources and three above it in dist/ (the package ships manifests/).
 */
export function poolCRDPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir))
    if (existsSync(join(dir, CRD_FILE))) return join(dir, CRD_FILE);
  throw new Error(
    `service-lb-ipam-controller: ${CRD_FILE} not found above ${fileURLToPath(import.meta.url)}`,
  );
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

export interface LoadBalancerIPPool extends KubeObject {
  spec?: {
    addresses?: string[];
    autoAssign?: boolean;
    serviceSelector?: LabelSelector;
    namespaceSelector?: LabelSelector;
  };
  status?: {
    observedGeneration?: number;
    allocated?: { ipv4?: number; ipv6?: number };
    available?: { ipv4?: string; ipv6?: string };
    conditions?: Condition[];
  };
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  ipMode?: string;
}

export interface LBService extends KubeObject {
  spec?: {
    type?: string;
    loadBalancerClass?: string;
    loadBalancerIP?: string;
    ipFamilies?: Family[];
    ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
    [key: string]: unknown;
  };
  status?: { loadBalancer?: { ingress?: LoadBalancerIngress[] }; [key: string]: unknown };
}

export function isOurs(ip: IPAddress): boolean {
  return ip.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

export function isReleased(ip: IPAddress): boolean {
  return ip.metadata.labels?.[RELEASED_LABEL] === 'true';
}

/** `namespace/name` of the Service an IPAddress of ours belongs to, or undefined. */
export function parentKey(ip: IPAddress): string | undefined {
  const p = ip.spec?.parentRef;
  if (!p || p.resource !== 'services' || (p.group ?? '') !== '' || !p.namespace) return undefined;
  return `${p.namespace}/${p.name}`;
}

/** Does this controller own the Service: type LoadBalancer and our class (or none, with the flag)? */
export function isManagedService(svc: LBService, defaultClass: boolean): boolean {
  if (svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return cls === LB_CLASS || (cls === undefined && defaultClass);
}

export function labelsMatch(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
