import { describe, expect, it } from '@jest/globals';
import type { Pod, ResourceClaim } from '../../lib/api/index.js';
import {
  ClaimNotCreatedError,
  UnsupportedPodClaimError,
  canBeReserved,
  claimGenerateName,
  claimSource,
  controllingPodUID,
  extendedResourceClaimName,
  isReservedForPod,
  notOwnedError,
  podDoneReason,
  resolveClaimName,
  specNeedsAdminAccess,
} from './names.js';

const a = (n: number) => 'a'.repeat(n);
const b = (n: number) => 'b'.repeat(n);

describe('claimGenerateName', () => {
  it.each([
    ['short names are joined with dashes', 'my-pod', 'acme-gpu', 'my-pod-acme-gpu-'],
    // 'x' (1) + '-' + 54 + '-' = 57: still fits
    ['exactly 57 characters is kept', 'x', b(54), `x-${b(54)}-`],
    // 58 characters: pod 1*57/58=0 chars, claim 55*57/58=54 chars
    ['one over the limit cuts both parts', 'x', b(55), `-${b(54)}`],
    // 63+63+2 = 128: each part keeps 63*57/128 = 28 characters
    ['two 63-character names keep 28 each', a(63), b(63), `${a(28)}-${b(28)}`],
    // 63+5+2 = 70: pod 63*57/70 = 51, claim 5*57/70 = 4
    ['a long pod name does not swallow the claim name', a(63), 'claim', `${a(51)}-clai`],
    // 4+63+2 = 69: pod 4*57/69 = 3, claim 63*57/69 = 52
    ['a long claim name does not swallow the pod name', 'pod1', b(63), `pod-${b(52)}`],
  ])('%s', (_why, pod, claim, want) => {
    const got = claimGenerateName(pod, claim);
    expect(got).toBe(want);
    expect(got.length).toBeLessThanOrEqual(57);
  });
});

function pod(extra: Partial<Pod> = {}, status?: Pod['status']): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', uid: 'pod-uid', ...(extra.metadata ?? {}) },
    spec: { resourceClaims: [], ...(extra.spec ?? {}) },
    status,
  };
}

function claim(
  extra: Partial<ResourceClaim['metadata']> = {},
  status?: ResourceClaim['status'],
): ResourceClaim {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name: 'c', namespace: 'ns', ...extra },
    status,
  };
}

describe('resolveClaimName', () => {
  it('a named claim resolves to itself without an owner check', () => {
    expect(resolveClaimName(pod(), { name: 'x', resourceClaimName: 'shared' })).toEqual({
      name: 'shared',
      checkOwner: false,
    });
  });
  it('a template claim resolves through the pod status, with an owner check', () => {
    const p = pod({}, { resourceClaimStatuses: [{ name: 'x', resourceClaimName: 'p-x-abcde' }] });
    expect(resolveClaimName(p, { name: 'x', resourceClaimTemplateName: 't' })).toEqual({
      name: 'p-x-abcde',
      checkOwner: true,
    });
  });
  it('a status entry with a null name means "not needed"', () => {
    const p = pod({}, { resourceClaimStatuses: [{ name: 'x', resourceClaimName: null }] });
    expect(resolveClaimName(p, { name: 'x', resourceClaimTemplateName: 't' })).toEqual({
      name: null,
      checkOwner: true,
    });
    const q = pod({}, { resourceClaimStatuses: [{ name: 'x' }] });
    expect(resolveClaimName(q, { name: 'x', resourceClaimTemplateName: 't' })).toEqual({
      name: null,
      checkOwner: true,
    });
  });
  it('a template claim without a status entry is not created yet', () => {
    const p = pod({}, { resourceClaimStatuses: [{ name: 'other', resourceClaimName: 'o' }] });
    expect(() => resolveClaimName(p, { name: 'x', resourceClaimTemplateName: 't' })).toThrow(
      ClaimNotCreatedError,
    );
    expect(() => resolveClaimName(p, { name: 'x', resourceClaimTemplateName: 't' })).toThrow(
      'ResourceClaim not created yet',
    );
  });
  it('a pod claim with neither field is unsupported', () => {
    expect(() => resolveClaimName(pod(), { name: 'x' })).toThrow(UnsupportedPodClaimError);
  });
});

describe('ownership', () => {
  const owner = (over: object) => [
    { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'pod-uid', controller: true, ...over },
  ];
  it.each([
    ['controller Pod reference', owner({}), 'pod-uid'],
    ['not the controller', owner({ controller: false }), undefined],
    ['controller but not a Pod', owner({ kind: 'Job', apiVersion: 'batch/v1' }), undefined],
    ['no owners', undefined, undefined],
  ])('controllingPodUID: %s', (_why, ownerReferences, want) => {
    expect(controllingPodUID(claim({ ownerReferences }))).toBe(want);
  });

  it('notOwnedError names both objects', () => {
    expect(notOwnedError(pod(), claim({ ownerReferences: owner({}) }))).toBeUndefined();
    expect(notOwnedError(pod(), claim({ ownerReferences: owner({ uid: 'other' }) }))?.message).toBe(
      'ResourceClaim ns/c was not created for pod ns/p (pod is not owner)',
    );
  });
});

describe('podDoneReason', () => {
  it.each([
    ['deleted', pod(), true, 'pod got removed'],
    ['succeeded', pod({}, { phase: 'Succeeded' }), false, 'pod has terminated'],
    ['failed', pod({}, { phase: 'Failed' }), false, 'pod has terminated'],
    [
      'deleted before scheduling',
      pod({ metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' } }),
      false,
      'pod got deleted before scheduling',
    ],
    [
      'terminating on a node',
      pod({ metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' }, spec: { nodeName: 'n' } }),
      false,
      undefined,
    ],
    ['running', pod({ spec: { nodeName: 'n' } }, { phase: 'Running' }), false, undefined],
    ['pending', pod({}, { phase: 'Pending' }), false, undefined],
  ])('%s', (_why, p, deleted, want) => {
    expect(podDoneReason(p, deleted)).toBe(want);
  });
});

describe('reservations', () => {
  it('isReservedForPod matches by UID', () => {
    expect(
      isReservedForPod(pod(), claim({}, { reservedFor: [{ resource: 'pods', name: 'p', uid: 'pod-uid' }] })),
    ).toBe(true);
    expect(
      isReservedForPod(pod(), claim({}, { reservedFor: [{ resource: 'pods', name: 'p', uid: 'old' }] })),
    ).toBe(false);
  });
  it('canBeReserved stops at 256 entries', () => {
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ resource: 'pods', name: `p${i}`, uid: `u${i}` }));
    expect(canBeReserved(claim({}, { reservedFor: entries(255) }))).toBe(true);
    expect(canBeReserved(claim({}, { reservedFor: entries(256) }))).toBe(false);
  });
});

describe('extendedResourceClaimName', () => {
  const pod = (status: Pod['status']): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    status,
  });
  it.each([
    [
      'recorded by the scheduler',
      { extendedResourceClaimStatus: { resourceClaimName: 'p-ext-abcde' } },
      'p-ext-abcde',
    ],
    ['no status', undefined, undefined],
    ['no extended claim', {}, undefined],
    ['empty name', { extendedResourceClaimStatus: { resourceClaimName: '' } }, undefined],
  ])('%s', (_why, status, want) => {
    expect(extendedResourceClaimName(pod(status))).toBe(want);
  });
});

describe('metric labels', () => {
  it.each([
    ['template claim', { 'resource.kubernetes.io/pod-claim-name': 'x' }, 'resource_claim_template'],
    [
      'extended resource claim',
      { 'resource.kubernetes.io/extended-resource-claim': 'true' },
      'extended_resource',
    ],
    [
      'extended resource annotation not "true"',
      { 'resource.kubernetes.io/extended-resource-claim': 'false' },
      '',
    ],
    [
      'both annotations: extended resource first (as upstream)',
      {
        'resource.kubernetes.io/pod-claim-name': 'x',
        'resource.kubernetes.io/extended-resource-claim': 'true',
      },
      'extended_resource',
    ],
    ['empty pod-claim-name annotation', { 'resource.kubernetes.io/pod-claim-name': '' }, ''],
    ['user claim', undefined, ''],
  ])('claimSource: %s', (_why, annotations, want) => {
    expect(claimSource(claim({ annotations }))).toBe(want);
  });
  it.each([
    ['exactly.adminAccess', { devices: { requests: [{ name: 'r', exactly: { adminAccess: true } }] } }, true],
    ['adminAccess false', { devices: { requests: [{ name: 'r', exactly: { adminAccess: false } }] } }, false],
    ['firstAvailable', { devices: { requests: [{ name: 'r', firstAvailable: [{ name: 's' }] }] } }, false],
    ['no spec', undefined, false],
  ])('specNeedsAdminAccess: %s', (_why, spec, want) => {
    expect(specNeedsAdminAccess(spec)).toBe(want);
  });
});
