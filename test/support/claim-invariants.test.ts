import { describe, expect, it } from '@jest/globals';
import type { Pod, ResourceClaim } from '../../lib/api/index.js';
import {
  analyzeClaimHistory,
  claimVersion,
  judgeClaims,
  podDoneAt,
  POD_CLAIM_NAME_ANNOTATION,
  type ClaimVersion,
} from './claim-invariants.js';

/** A claim version: `reserved` names consumer pods, whose UID is `uid-<name>`. */
function v(
  rv: number,
  reserved: string[],
  allocated = reserved.length > 0,
  type: ClaimVersion['type'] = 'MODIFIED',
): ClaimVersion {
  return {
    type,
    rv: BigInt(rv),
    name: 'c',
    uid: 'claim-uid',
    allocated,
    reservedFor: reserved.map((n) => ({ uid: `uid-${n}`, name: n })),
  };
}

const done = (entries: Record<string, number>) =>
  new Map(Object.entries(entries).map(([n, rv]) => [`uid-${n}`, BigInt(rv)]));

describe('analyzeClaimHistory', () => {
  it('accepts add, then removal with deallocation after the pod is done', () => {
    const h = analyzeClaimHistory([v(1, [], false, 'ADDED'), v(2, ['a']), v(5, [], false)], done({ a: 4 }));
    expect(h).toEqual({ violations: [], added: 1, removed: 1, deallocated: 1 });
  });

  it('flags a reservation removed before its pod was done, and one of a pod never done', () => {
    const early = analyzeClaimHistory([v(2, ['a', 'b']), v(3, ['b'])], done({ a: 4 }));
    expect(early.violations.map((x) => x.invariant)).toEqual([
      'a reservation is removed only for a pod that is done or gone',
    ]);
    expect(early.violations[0]!.detail).toContain('pod done at 4');
    const never = analyzeClaimHistory([v(2, ['a']), v(3, ['a', 'b']), v(4, ['a'])], done({}));
    expect(never.violations[0]!.detail).toContain('pod done at never');
  });

  it('flags deallocation while a consumer in the previous version is not done', () => {
    // b was added concurrently and wiped together with a by a stale write.
    const h = analyzeClaimHistory([v(2, ['a', 'b']), v(6, [], false)], done({ a: 5 }));
    expect(h.violations.map((x) => x.invariant)).toEqual([
      'a reservation is removed only for a pod that is done or gone',
      'no claim deallocated while reserved',
    ]);
  });

  it('flags an unallocated claim that is still reserved', () => {
    const h = analyzeClaimHistory([v(2, ['a']), v(3, ['a'], false)], done({}));
    expect(h.violations.map((x) => x.invariant)).toContain('no claim unallocated while reserved');
  });

  it('flags a reservation re-added after its removal (removed twice if removed again)', () => {
    const h = analyzeClaimHistory(
      [v(2, ['a']), v(4, [], false), v(5, ['a']), v(6, [], false)],
      done({ a: 3 }),
    );
    expect(h.violations.map((x) => x.invariant)).toEqual(['every reservation removed exactly once']);
    expect(h.added).toBe(2);
    expect(h.removed).toBe(2);
  });

  it('flags a claim deleted while still reserved, not one deleted after its reservations went', () => {
    const bad = analyzeClaimHistory([v(2, ['a']), v(3, ['a'], true, 'DELETED')], done({ a: 1 }));
    expect(bad.violations.map((x) => x.invariant)).toEqual([
      'every reservation removed before the claim goes',
    ]);
    const good = analyzeClaimHistory(
      [v(2, ['a']), v(4, [], false), v(5, [], false, 'DELETED')],
      done({ a: 3 }),
    );
    expect(good.violations).toEqual([]);
  });

  it('keeps claims apart by UID (a claim re-created under the same name starts afresh)', () => {
    const first = v(2, ['a']);
    const second = { ...v(3, ['a']), uid: 'other-uid' };
    const h = analyzeClaimHistory([first, second], done({}));
    expect(h.violations).toEqual([]);
    expect(h.added).toBe(2);
  });
});

describe('podDoneAt', () => {
  const pod = (uid: string, rv: string, phase?: string, deleting = false): Pod =>
    ({
      metadata: { uid, resourceVersion: rv, ...(deleting ? { deletionTimestamp: 'now' } : {}) },
      status: phase ? { phase } : {},
    }) as Pod;

  it('takes the first version that is Succeeded, Failed, deleting or deleted', () => {
    const at = podDoneAt([
      { type: 'ADDED', pod: pod('a', '1') },
      { type: 'MODIFIED', pod: pod('a', '2', 'Running') },
      { type: 'MODIFIED', pod: pod('a', '3', 'Succeeded') },
      { type: 'DELETED', pod: pod('a', '4', 'Succeeded') },
      { type: 'MODIFIED', pod: pod('b', '5', 'Running', true) },
      { type: 'DELETED', pod: pod('c', '7', 'Running') },
      { type: 'MODIFIED', pod: pod('d', '8', 'Running') },
    ]);
    expect([...at]).toEqual([
      ['a', 3n],
      ['b', 5n],
      ['c', 7n],
    ]);
  });
});

describe('judgeClaims', () => {
  const pod = (name: string, phase: string, claimName?: string, template = true): Pod =>
    ({
      metadata: { name, uid: `uid-${name}` },
      spec: {
        containers: [],
        resourceClaims: [
          template
            ? { name: 'gpu', resourceClaimTemplateName: 't' }
            : { name: 'gpu', resourceClaimName: 's' },
        ],
      },
      status: {
        phase,
        ...(claimName ? { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: claimName }] } : {}),
      },
    }) as Pod;
  const claim = (name: string, owner?: string, reserved: string[] = []): ResourceClaim =>
    ({
      metadata: {
        name,
        uid: `claim-${name}`,
        annotations: { [POD_CLAIM_NAME_ANNOTATION]: 'gpu' },
        ...(owner
          ? {
              ownerReferences: [
                { apiVersion: 'v1', kind: 'Pod', name: owner, uid: `uid-${owner}`, controller: true },
              ],
            }
          : {}),
      },
      spec: {},
      status: reserved.length
        ? {
            allocation: {},
            reservedFor: reserved.map((n) => ({ resource: 'pods', name: n, uid: `uid-${n}` })),
          }
        : {},
    }) as ResourceClaim;
  const invariants = (pods: Pod[], claims: ResourceClaim[]) =>
    judgeClaims(pods, claims).map((x) => x.invariant);

  it('accepts a running pod with its claim reserved, and done pods whose claims are gone', () => {
    expect(
      invariants(
        [pod('a', 'Running', 'a-gpu'), pod('b', 'Succeeded', 'b-gpu'), pod('c', 'Running', undefined, false)],
        [claim('a-gpu', 'a', ['a']), claim('s', undefined, ['c'])],
      ),
    ).toEqual([]);
  });

  it('flags the generated claim of a done pod and of a gone pod', () => {
    expect(invariants([pod('b', 'Failed', 'b-gpu')], [claim('b-gpu', 'b'), claim('x-gpu', 'x')])).toEqual([
      'every generated claim of a finished or deleted pod is gone',
      'every generated claim of a finished or deleted pod is gone',
    ]);
  });

  it('flags reservations of done and gone pods', () => {
    expect(invariants([pod('b', 'Succeeded', 'b-gpu')], [claim('s', undefined, ['b', 'gone'])])).toEqual([
      'no claim reserved for a pod that is done or gone',
      'no claim reserved for a pod that is done or gone',
    ]);
  });

  it('flags a pod without its claim recorded, an orphan claim, and a running pod whose claim is gone', () => {
    expect(invariants([pod('a', 'Running')], [claim('a-gpu', 'a')])).toEqual([
      "every pod's status.resourceClaimStatuses names its generated claims",
      "every pod's status.resourceClaimStatuses names its generated claims",
    ]);
    expect(invariants([pod('a', 'Running', 'a-gpu')], [])).toEqual([
      'the generated claim of a pod that may still run exists',
    ]);
    expect(
      invariants([pod('a', 'Running', 'b-gpu'), pod('b', 'Running', 'b-gpu')], [claim('b-gpu', 'b')]),
    ).toEqual(["every pod's status.resourceClaimStatuses names its generated claims"]);
  });
});

describe('claimVersion', () => {
  it('reads allocation and consumers', () => {
    const c = {
      metadata: { name: 'c', uid: 'u', resourceVersion: '42' },
      spec: {},
      status: { allocation: { devices: {} }, reservedFor: [{ resource: 'pods', name: 'p', uid: 'pu' }] },
    } as ResourceClaim;
    expect(claimVersion('ADDED', c)).toEqual({
      type: 'ADDED',
      rv: 42n,
      name: 'c',
      uid: 'u',
      allocated: true,
      reservedFor: [{ uid: 'pu', name: 'p' }],
    });
  });
});
