/**
 * Pure rules of the ResourceClaim controller: how a generated claim is named, how a pod
 * claim resolves to a ResourceClaim name, who owns a claim, and when a pod is done with
 * its claims. No I/O here, so every rule has a table test (names.test.ts).
 */
import type { Pod, PodResourceClaim, ResourceClaim } from '../../lib/api/index.js';

/** Value: the pod.spec.resourceClaims[].name a generated claim was made for. */
export const POD_CLAIM_NAME_ANNOTATION = 'resource.kubernetes.io/pod-claim-name';
/** Set to "true" by the scheduler on claims it makes for extended resources. */
export const EXTENDED_RESOURCE_CLAIM_ANNOTATION = 'resource.kubernetes.io/extended-resource-claim';
/** The scheduler adds it when it allocates; we remove it once the allocation is cleared. */
export const DELETE_PROTECTION_FINALIZER = 'resource.kubernetes.io/delete-protection';
/** resource.k8s.io/v1 ResourceClaimReservedForMaxSize: the apiserver rejects more entries. */
export const RESERVED_FOR_MAX_SIZE = 256;

/**
 * Object names may have 63 characters; the apiserver appends 5 random ones to a
 * generateName, so the base keeps 57 (the dash before the suffix is part of the base).
 */
const MAX_GENERATE_NAME_BASE = 57;

/**
 * generateName for the claim of `podClaimName` in pod `podName`: `<pod>-<claim>-`. When
 * that is too long, both parts are cut in proportion to their length (so a long pod
 * name does not swallow the claim name, as a plain cut at the end would) and joined
 * with a single dash, without a trailing one.
 */
export function claimGenerateName(podName: string, podClaimName: string): string {
  const full = `${podName}-${podClaimName}-`;
  if (full.length <= MAX_GENERATE_NAME_BASE) return full;
  const podPart = podName.slice(0, Math.floor((podName.length * MAX_GENERATE_NAME_BASE) / full.length));
  const claimPart = podClaimName.slice(
    0,
    Math.floor((podClaimName.length * MAX_GENERATE_NAME_BASE) / full.length),
  );
  return `${podPart}-${claimPart}`;
}

/** The template claim has no entry in pod.status.resourceClaimStatuses yet. */
export class ClaimNotCreatedError extends Error {
  constructor() {
    super('ResourceClaim not created yet');
    this.name = 'ClaimNotCreatedError';
  }
}

/** A pod claim with neither field we know: a newer API we cannot handle safely. */
export class UnsupportedPodClaimError extends Error {
  constructor(podClaim: PodResourceClaim) {
    super(
      `PodResourceClaim ${podClaim.name}: unsupported API (neither resourceClaimName nor resourceClaimTemplateName is set)`,
    );
    this.name = 'UnsupportedPodClaimError';
  }
}

export interface ResolvedClaimName {
  /** null: the claim was judged "not needed" when the pod status was written. */
  name: string | null;
  /** Template claims must be controlled by the pod; named claims are shared and are not. */
  checkOwner: boolean;
}

/** The ResourceClaim a pod claim refers to. Throws ClaimNotCreatedError or UnsupportedPodClaimError. */
export function resolveClaimName(pod: Pod, podClaim: PodResourceClaim): ResolvedClaimName {
  if (podClaim.resourceClaimName) return { name: podClaim.resourceClaimName, checkOwner: false };
  if (podClaim.resourceClaimTemplateName) {
    const entry = pod.status?.resourceClaimStatuses?.find((s) => s.name === podClaim.name);
    if (!entry) throw new ClaimNotCreatedError();
    return { name: entry.resourceClaimName ?? null, checkOwner: true };
  }
  throw new UnsupportedPodClaimError(podClaim);
}

/** Like resolveClaimName, but undefined instead of throwing (for indexes and event handlers). */
export function tryResolveClaimName(pod: Pod, podClaim: PodResourceClaim): ResolvedClaimName | undefined {
  try {
    return resolveClaimName(pod, podClaim);
  } catch {
    return undefined;
  }
}

/** UID of the Pod that controls the claim (ownerReference v1/Pod with controller=true). */
export function controllingPodUID(claim: ResourceClaim): string | undefined {
  const ref = claim.metadata.ownerReferences?.find((r) => r.controller === true);
  return ref && ref.apiVersion === 'v1' && ref.kind === 'Pod' ? ref.uid : undefined;
}

/** The error a template claim gives when it belongs to someone else, or undefined when it is the pod's. */
export function notOwnedError(pod: Pod, claim: ResourceClaim): Error | undefined {
  if (controllingPodUID(claim) === pod.metadata.uid && claim.metadata.namespace === pod.metadata.namespace)
    return undefined;
  return new Error(
    `ResourceClaim ${claim.metadata.namespace}/${claim.metadata.name} was not created for pod ` +
      `${pod.metadata.namespace}/${pod.metadata.name} (pod is not owner)`,
  );
}

export function isReservedForPod(pod: Pod, claim: ResourceClaim): boolean {
  return (claim.status?.reservedFor ?? []).some((r) => r.uid === pod.metadata.uid);
}

export function canBeReserved(claim: ResourceClaim): boolean {
  return (claim.status?.reservedFor ?? []).length < RESERVED_FOR_MAX_SIZE;
}

export function isAllocated(claim: ResourceClaim): boolean {
  return claim.status?.allocation != null;
}

/**
 * Why a pod no longer needs its claims, or undefined while it still might run: it was
 * deleted, it terminated, or it is being deleted before it was ever scheduled.
 */
export function podDoneReason(pod: Pod, deleted = false): string | undefined {
  if (deleted) return 'pod got removed';
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return 'pod has terminated';
  if (pod.metadata.deletionTimestamp && !pod.spec?.nodeName) return 'pod got deleted before scheduling';
  return undefined;
}

/**
 * The claim the scheduler made for the pod's extended resources (DRAExtendedResource),
 * recorded only in `status.extendedResourceClaimStatus`, never in `spec.resourceClaims`.
 */
export function extendedResourceClaimName(pod: Pod): string | undefined {
  const status = pod.status?.extendedResourceClaimStatus as
    { resourceClaimName?: unknown } | null | undefined;
  const name = status?.resourceClaimName;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

export function isPodDone(pod: Pod): boolean {
  return podDoneReason(pod) !== undefined;
}

interface DeviceRequestLike {
  adminAccess?: boolean;
  exactly?: { adminAccess?: boolean };
}

/** Whether a claim spec asks for admin access to any device (v1 `exactly.adminAccess`). */
export function specNeedsAdminAccess(spec: Record<string, unknown> | undefined): boolean {
  const devices = spec?.devices as { requests?: DeviceRequestLike[] } | undefined;
  return (devices?.requests ?? []).some((r) => r.exactly?.adminAccess === true || r.adminAccess === true);
}

/** The `source` label of resourceclaim_controller_resource_claims. */
export function claimSource(claim: ResourceClaim): '' | 'resource_claim_template' | 'extended_resource' {
  // Upstream's order: the extended-resource marker wins, and an empty pod-claim-name does not count.
  const annotations = claim.metadata.annotations ?? {};
  if (annotations[EXTENDED_RESOURCE_CLAIM_ANNOTATION] === 'true') return 'extended_resource';
  if (annotations[POD_CLAIM_NAME_ANNOTATION]) return 'resource_claim_template';
  return '';
}
