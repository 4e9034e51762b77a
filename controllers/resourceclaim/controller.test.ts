/**
 * Unit tests by recorded API actions: caches primed by hand, the fake apiserver records
 * every call, and each scenario asserts the exact list of calls (upstream's
 * controller_test.go scenarios, plus rollback, handlers and concurrency).
 */
import { describe, expect, it } from '@jest/globals';
import type { KubeObject, Pod, ResourceClaim } from '../../lib/api/index.js';
import { ApiError, NetworkError, Resources } from '../../lib/client/index.js';
import type { FakeAction } from '../../lib/client/index.js';
import { MemoryLogger } from '../../lib/log/index.js';
import {
  ALLOCATION,
  CLAIM_SPEC,
  NODE,
  NS,
  POD_CLAIM,
  POD_NAME,
  POD_UID,
  TEMPLATE,
  makeClaim,
  makePod,
  makeTemplate,
  ownerRef,
  setup,
} from './testing.js';
import { DELETE_PROTECTION_FINALIZER, POD_CLAIM_NAME_ANNOTATION } from './names.js';
import { desiredClaimStatuses } from './controller.js';

const GENERATED = `${POD_NAME}-${POD_CLAIM}-bbbbb`; // the fake's first generateName suffix

const createAction = (pod: Pod): FakeAction => ({
  verb: 'create',
  resource: 'resourceclaims',
  namespace: NS,
  body: {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: {
      generateName: `${POD_NAME}-${POD_CLAIM}-`,
      namespace: NS,
      ownerReferences: [ownerRef(pod)],
      annotations: { note: 'from-template', [POD_CLAIM_NAME_ANNOTATION]: POD_CLAIM },
      labels: { team: 'a' },
    },
    spec: CLAIM_SPEC,
  },
});

const applyStatusAction = (claimName: string, uid = POD_UID): FakeAction => ({
  verb: 'patch',
  resource: 'pods',
  namespace: NS,
  name: POD_NAME,
  subresource: 'status',
  fieldManager: 'ResourceClaimController',
  patchType: 'apply',
  force: true,
  body: {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD_NAME, namespace: NS, uid },
    status: { resourceClaimStatuses: [{ name: POD_CLAIM, resourceClaimName: claimName }] },
  },
});

const getPod = (name = POD_NAME): FakeAction => ({ verb: 'get', resource: 'pods', namespace: NS, name });

/** The calls, with bodies of claim updates reduced to what the scenario is about. */
function calls(actions: FakeAction[]) {
  return actions.map((a) => {
    if (a.verb === 'update' && a.resource === 'resourceclaims') {
      const body = a.body as ResourceClaim;
      return {
        verb: a.verb,
        name: a.name,
        subresource: a.subresource,
        resourceVersion: body.metadata.resourceVersion,
        reservedFor: body.status?.reservedFor?.map((r) => r.name),
        allocated: body.status?.allocation != null,
        finalizers: body.metadata.finalizers,
      };
    }
    return a;
  });
}

function storedClaim(h: ReturnType<typeof setup>, name: string): ResourceClaim | undefined {
  return h.fake.tracker.get(Resources.resourceClaims, NS, name) as ResourceClaim | undefined;
}

async function createsTotal(h: ReturnType<typeof setup>): Promise<string> {
  const text = await h.registry.getSingleMetricAsString('resourceclaim_controller_creates_total');
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

describe('syncPod', () => {
  it('create: makes a claim from the template and publishes it in the pod status', async () => {
    const pod = makePod();
    const h = setup([pod, makeTemplate()]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([createAction(pod), applyStatusAction(GENERATED)]);
    expect(await createsTotal(h)).toBe(
      'resourceclaim_controller_creates_total{status="success",admin_access="false"} 1',
    );
    // Visible to the next attempt before the informer delivers it.
    expect(h.controller.claimCache.get(`${NS}/${GENERATED}`)?.metadata.uid).toBeDefined();
    expect(h.recorder.events).toEqual([]);
  });

  it('nop: the recorded claim exists and is owned', async () => {
    const h = setup([makePod({ claimName: 'existing' }), makeTemplate(), makeClaim({ name: 'existing' })]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([]);
  });

  it('recreate: the recorded claim was deleted, so a new one is made', async () => {
    const pod = makePod({ claimName: 'deleted-claim' });
    const h = setup([pod, makeTemplate()]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([createAction(pod), applyStatusAction(GENERATED)]);
  });

  it('missing template: Warning event, error, nothing written', async () => {
    const pod = makePod();
    const h = setup([pod]);
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow(
      `pod ${NS}/${POD_NAME}, PodResourceClaim ${POD_CLAIM}: resource claim template "${TEMPLATE}": resourceclaimtemplate.resource.k8s.io "${TEMPLATE}" not found`,
    );
    expect(h.fake.actions).toEqual([]);
    expect(h.recorder.events.map(({ type, reason, note }) => ({ type, reason, note }))).toEqual([
      {
        type: 'Warning',
        reason: 'FailedResourceClaimCreation',
        note: `PodResourceClaim ${POD_CLAIM}: resource claim template "${TEMPLATE}": resourceclaimtemplate.resource.k8s.io "${TEMPLATE}" not found`,
      },
    ]);
    expect(h.recorder.events[0].regarding.metadata.uid).toBe(POD_UID);
  });

  it('find existing claim by annotation: an orphan owned by the pod is published, not duplicated', async () => {
    const h = setup([makePod(), makeTemplate(), makeClaim({ name: 'orphan' })]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([applyStatusAction('orphan')]);
    expect(await createsTotal(h)).toBe('');
  });

  it('an owned claim for another pod claim name is not taken', async () => {
    const other = makeClaim({ name: 'other' });
    other.metadata.annotations = { [POD_CLAIM_NAME_ANNOTATION]: 'something-else' };
    const pod = makePod();
    const h = setup([pod, makeTemplate(), other]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([createAction(pod), applyStatusAction(GENERATED)]);
  });

  it('find just-created claim in the cache: the mutation cache answers before the informer', async () => {
    const h = setup([makePod(), makeTemplate()]);
    h.controller.claimCache.mutation(makeClaim({ name: 'just-created' }));
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([applyStatusAction('just-created')]);
  });

  it('no such pod / pod being deleted / pod without claims: nothing to do', async () => {
    const deleting = makePod();
    deleting.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    const noClaims = makePod({ name: 'plain', uid: 'plain-uid' });
    noClaims.spec!.resourceClaims = [];
    const h = setup([deleting, noClaims, makeTemplate()]);
    await h.controller.reconcile(`pod:${NS}/no-such-pod`);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    await h.controller.reconcile(`pod:${NS}/plain`);
    expect(h.fake.actions).toEqual([]);
  });

  it('claim not owned: the recorded claim belongs to another pod and no template exists (error)', async () => {
    const stranger = makePod({ name: 'stranger', uid: 'stranger-uid' });
    const h = setup([makePod({ claimName: 'taken' }), makeClaim({ name: 'taken', owner: stranger })]);
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow(
      `resource claim template "${TEMPLATE}"`,
    );
    expect(h.fake.actions).toEqual([]);
  });

  it('claim not owned: with the template, a claim of its own replaces it', async () => {
    const stranger = makePod({ name: 'stranger', uid: 'stranger-uid' });
    const pod = makePod({ claimName: 'taken' });
    const h = setup([pod, makeTemplate(), makeClaim({ name: 'taken', owner: stranger })]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([createAction(pod), applyStatusAction(GENERATED)]);
  });

  it('create conflict: failure counted, Warning event, error', async () => {
    const pod = makePod();
    const h = setup([pod, makeTemplate()]);
    h.fake.prependReactor('create', 'resourceclaims', () => {
      throw new ApiError({
        code: 409,
        reason: 'Conflict',
        message: 'fake conflict',
        verb: 'create',
        resource: 'resourceclaims',
      });
    });
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow(
      `create ResourceClaim ${POD_NAME}-${POD_CLAIM}-: fake conflict`,
    );
    expect(h.fake.actions).toEqual([createAction(pod)]);
    expect(await createsTotal(h)).toBe(
      'resourceclaim_controller_creates_total{status="failure",admin_access="false"} 1',
    );
    expect(h.recorder.events.map((e) => e.note)).toEqual([
      `PodResourceClaim ${POD_CLAIM}: create ResourceClaim ${POD_NAME}-${POD_CLAIM}-: fake conflict`,
    ]);
  });

  it('admin access is a metric label', async () => {
    const template = makeTemplate();
    template.spec.spec = {
      devices: { requests: [{ name: 'r', exactly: { deviceClassName: 'c', adminAccess: true } }] },
    };
    const h = setup([makePod(), template]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(await createsTotal(h)).toBe(
      'resourceclaim_controller_creates_total{status="success",admin_access="true"} 1',
    );
  });

  it('add reservation for a pod created with a nodeName: strategic merge by uid, guarded by the claim uid', async () => {
    const pod = makePod({ claimName: 'generated', nodeName: NODE });
    const h = setup([
      pod,
      makeTemplate(),
      makeClaim({ name: 'generated', allocated: true, finalizer: true }),
    ]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([
      {
        verb: 'patch',
        resource: 'resourceclaims',
        namespace: NS,
        name: 'generated',
        subresource: 'status',
        patchType: 'strategic',
        body: {
          metadata: { uid: 'uidclaim1' },
          status: { reservedFor: [{ resource: 'pods', name: POD_NAME, uid: POD_UID }] },
        },
      },
    ]);
    expect(storedClaim(h, 'generated')?.status?.reservedFor).toEqual([
      { resource: 'pods', name: POD_NAME, uid: POD_UID },
    ]);
  });

  it('a pod with a nodeName gets its claim created, published and (once allocated) reserved in one pass', async () => {
    const pod = makePod({ nodeName: NODE });
    const h = setup([pod, makeTemplate()]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    // Not allocated yet: nothing to reserve.
    expect(h.fake.actions).toEqual([createAction(pod), applyStatusAction(GENERATED)]);
  });

  it('a done pod is never reserved again (its reservation was just removed)', async () => {
    const pod = makePod({ claimName: 'generated', nodeName: NODE, phase: 'Succeeded' });
    const h = setup([
      pod,
      makeTemplate(),
      makeClaim({ name: 'generated', allocated: true, finalizer: true }),
    ]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([]);
    h.controller.claimChanged(h.claims.getIndexer().get(`${NS}/generated`)!, false);
    expect(h.queue.added).toEqual([`claim:${NS}/generated`, `claim:${NS}/generated`]);
  });

  it('two template claims, one generated claim deleted: the apply carries both entries, so neither is dropped', async () => {
    // Server-side apply removes what this field manager applied before and omits now: an
    // apply of only the re-created entry would drop the other one, and the next sync would
    // put that back and drop this one, forever.
    const pod = makePod({ claimName: 'kept' });
    pod.spec!.resourceClaims!.push({ name: 'second', resourceClaimTemplateName: TEMPLATE });
    pod.status!.resourceClaimStatuses!.push({ name: 'second', resourceClaimName: 'deleted-claim' });
    const h = setup([pod, makeTemplate(), makeClaim({ name: 'kept' })]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    const recreated = `${POD_NAME}-second-bbbbb`;
    expect(h.fake.actions.map((a) => a.verb)).toEqual(['create', 'patch']);
    expect(h.fake.actions[1]).toEqual({
      ...applyStatusAction(''),
      body: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: POD_NAME, namespace: NS, uid: POD_UID },
        status: {
          resourceClaimStatuses: [
            { name: POD_CLAIM, resourceClaimName: 'kept' },
            { name: 'second', resourceClaimName: recreated },
          ],
        },
      },
    });
  });

  it('the applied list is sorted by pod claim name and leaves out entries with a null name', () => {
    const pod = makePod({ claimName: null });
    pod.status!.resourceClaimStatuses!.push({ name: 'b', resourceClaimName: 'claim-b' });
    expect(desiredClaimStatuses(pod, [{ name: 'a', resourceClaimName: 'claim-a' }])).toEqual([
      { name: 'a', resourceClaimName: 'claim-a' },
      { name: 'b', resourceClaimName: 'claim-b' },
    ]);
  });

  it('a claim judged "not needed" (null name) is skipped', async () => {
    const h = setup([makePod({ claimName: null, nodeName: NODE })]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([]);
  });
});

describe('syncPod rollback (fault injection)', () => {
  const notFound = () =>
    new ApiError({
      code: 404,
      reason: 'NotFound',
      message: `pods "${POD_NAME}" not found`,
      verb: 'patch',
      resource: 'pods',
    });

  it('pod gone while publishing: the claim created in this attempt is deleted again', async () => {
    const pod = makePod();
    const h = setup([pod, makeTemplate()]);
    h.fake.prependReactor('patch', 'pods', () => {
      throw notFound();
    });
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    const createdUid = h.controller.claimCache.get(`${NS}/${GENERATED}`)?.metadata.uid;
    expect(createdUid).toMatch(/^fake-uid-/);
    expect(h.fake.actions).toEqual([
      createAction(pod),
      applyStatusAction(GENERATED),
      {
        verb: 'delete',
        resource: 'resourceclaims',
        namespace: NS,
        name: GENERATED,
        options: { preconditions: { uid: createdUid } },
      },
    ]);
    expect(storedClaim(h, GENERATED)).toBeUndefined();
  });

  it('pod replaced (another UID) while publishing: conflict, live GET shows the new UID, rollback', async () => {
    const pod = makePod();
    const replacement = makePod({ uid: 'uidpod2' });
    const h = setup([pod, makeTemplate()]);
    h.fake.tracker.add(replacement); // the apiserver has the new pod, the cache still the old one
    h.fake.prependReactor('patch', 'pods', () => {
      throw new ApiError({
        code: 409,
        reason: 'Conflict',
        message: `Operation cannot be fulfilled on pods "${POD_NAME}": Precondition failed: UID in precondition: ${POD_UID}, UID in object meta: uidpod2`,
        verb: 'patch',
        resource: 'pods',
      });
    });
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions.map((a) => `${a.verb} ${a.resource}${a.name ? ' ' + a.name : ''}`)).toEqual([
      'create resourceclaims',
      `patch pods ${POD_NAME}`,
      `get pods ${POD_NAME}`,
      `delete resourceclaims ${GENERATED}`,
    ]);
    expect(storedClaim(h, GENERATED)).toBeUndefined();
  });

  it('a create whose answer was lost: the retry finds the claim by a live LIST instead of creating a second', async () => {
    const pod = makePod();
    const h = setup([pod, makeTemplate()]);
    let lost = 1;
    h.fake.prependReactor('create', 'resourceclaims', (action) => {
      if (lost-- <= 0) return undefined;
      const body = action.body as ResourceClaim;
      h.fake.tracker.create(
        Resources.resourceClaims,
        { ...body, metadata: { ...body.metadata, name: 'landed' } },
        NS,
      );
      throw new NetworkError('POST', 'https://apiserver/resourceclaims', new Error('socket hang up'));
    });
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow('socket hang up');
    h.fake.clearActions();
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions.map((a) => `${a.verb} ${a.resource}`)).toEqual([
      'list resourceclaims',
      'patch pods',
    ]);
    expect(h.fake.actions[1]).toEqual(applyStatusAction('landed'));
    // Only once: the next sync trusts the caches again.
    h.fake.clearActions();
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions.filter((a) => a.verb === 'list')).toEqual([]);
  });

  it('a transient publish error keeps the claim; the retry reuses it instead of creating another', async () => {
    const pod = makePod();
    const h = setup([pod, makeTemplate()]);
    let failures = 1;
    h.fake.prependReactor('patch', 'pods', () => {
      if (failures-- > 0) {
        throw new ApiError({
          code: 500,
          reason: 'InternalError',
          message: 'etcd hiccup',
          verb: 'patch',
          resource: 'pods',
        });
      }
      return undefined;
    });
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow(
      `update pod ${NS}/${POD_NAME} ResourceClaimStatuses: etcd hiccup`,
    );
    expect(h.fake.actions.map((a) => `${a.verb} ${a.resource}`)).toEqual([
      'create resourceclaims',
      'patch pods',
      'get pods',
    ]);
    h.fake.clearActions();
    // The informer has not delivered the claim yet: only the mutation cache knows it.
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    expect(h.fake.actions).toEqual([applyStatusAction(GENERATED)]);
    expect(await createsTotal(h)).toBe(
      'resourceclaim_controller_creates_total{status="success",admin_access="false"} 1',
    );
  });

  it('nothing created in this attempt: a publish failure is only an error, nothing is deleted', async () => {
    const h = setup([makePod(), makeClaim({ name: 'orphan' })]);
    h.fake.prependReactor('patch', 'pods', () => {
      throw notFound();
    });
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow('ResourceClaimStatuses');
    expect(h.fake.writeActions().map((a) => a.verb)).toEqual(['patch']);
  });

  it('a second claim failing validation stops the attempt before the first is created', async () => {
    const pod = makePod();
    pod.spec!.resourceClaims!.push({ name: 'second', resourceClaimTemplateName: 'missing-template' });
    const h = setup([pod, makeTemplate()]);
    await expect(h.controller.reconcile(`pod:${NS}/${POD_NAME}`)).rejects.toThrow(
      'PodResourceClaim second: resource claim template "missing-template"',
    );
    expect(h.fake.actions).toEqual([]);
  });
});

describe('syncClaim', () => {
  it('stay reserved: the pod is in the cache and running', async () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE, phase: 'Running' });
    const h = setup([pod, makeClaim({ name: 'c', reservedFor: [pod], allocated: true, finalizer: true })]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions).toEqual([]);
  });

  it('a pod the live GET found done is never reserved again, though the lagging cache shows it running', async () => {
    // The faults-claims suite caught this under watch cuts: the reservation of a pod not yet
    // in the cache was dropped after a GET showed it Failed; then the pod watch delivered its
    // older Running version (with nodeName) and syncPod reserved the claim for it again.
    const done = makePod({ name: 'done', uid: 'done-uid', nodeName: NODE, template: false, phase: 'Failed' });
    const other = makePod({
      name: 'other',
      uid: 'other-uid',
      nodeName: NODE,
      template: false,
      phase: 'Running',
    });
    const shared = makeClaim({
      name: 'shared',
      owner: null,
      reservedFor: [done, other],
      allocated: true,
      finalizer: true,
    });
    const h = setup([other, shared], [done]);
    await h.controller.reconcile(`claim:${NS}/shared`);
    expect(calls(h.fake.actions).map((a) => ('reservedFor' in a ? a.reservedFor : a))).toEqual([
      getPod('done'),
      ['other'],
    ]);
    h.syncCaches();
    const stale = { ...done, status: { phase: 'Running' as const } };
    h.pods.getIndexer().add(stale);
    h.fake.actions.length = 0;
    h.controller.podChanged(stale, false);
    expect(h.queue.added.filter((k) => k.startsWith('pod:'))).toEqual([]);
    await h.controller.reconcile(`pod:${NS}/done`);
    expect(h.fake.actions).toEqual([]);
  });

  it('stay reserved: the pod is only found by a live GET', async () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE });
    const h = setup([makeClaim({ name: 'c', reservedFor: [pod], allocated: true, finalizer: true })], [pod]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions).toEqual([getPod()]);
  });

  it('clear reserved + allocation + finalizer when the last consumer is gone', async () => {
    const pod = makePod();
    const h = setup([
      makeClaim({ name: 'c', owner: null, reservedFor: [pod], allocated: true, finalizer: true }),
    ]);
    const rv = h.claims.getIndexer().get(`${NS}/c`)!.metadata.resourceVersion;
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(calls(h.fake.actions)).toEqual([
      getPod(),
      {
        verb: 'update',
        name: 'c',
        subresource: 'status',
        resourceVersion: rv,
        reservedFor: [],
        allocated: false,
        finalizers: [DELETE_PROTECTION_FINALIZER],
      },
      {
        verb: 'update',
        name: 'c',
        subresource: undefined,
        resourceVersion: String(Number(rv) + 1),
        reservedFor: [],
        allocated: false,
        finalizers: [],
      },
    ]);
    const stored = storedClaim(h, 'c')!;
    expect(stored.status?.allocation).toBeUndefined();
    expect(stored.metadata.finalizers).toEqual([]);
  });

  it("don't clear while another pod holds it: only the gone pod's entry goes", async () => {
    const gone = makePod({ name: 'gone', uid: 'gone-uid' });
    const running = makePod({ name: 'running', uid: 'running-uid', nodeName: NODE, phase: 'Running' });
    const h = setup([
      running,
      makeClaim({ name: 'c', owner: null, reservedFor: [gone, running], allocated: true, finalizer: true }),
    ]);
    h.controller.podChanged(gone, true); // remembered as deleted: no GET needed
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(calls(h.fake.actions)).toEqual([
      {
        verb: 'update',
        name: 'c',
        subresource: 'status',
        resourceVersion: expect.any(String),
        reservedFor: ['running'],
        allocated: true,
        finalizers: [DELETE_PROTECTION_FINALIZER],
      },
    ]);
  });

  it('remove reservation of a pod that was replaced by one with another UID', async () => {
    const old = makePod({ uid: 'old-uid' });
    const current = makePod({ nodeName: NODE, phase: 'Running' });
    const other = makePod({ name: 'other', uid: 'other-uid', nodeName: NODE, phase: 'Running' });
    const h = setup([
      current,
      other,
      makeClaim({ name: 'c', owner: null, reservedFor: [old, other], allocated: true, finalizer: true }),
    ]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(calls(h.fake.actions)).toEqual([
      expect.objectContaining({
        verb: 'update',
        subresource: 'status',
        reservedFor: ['other'],
        allocated: true,
      }),
    ]);
  });

  it('delete claim when done: reservation removed, deallocated, finalizer dropped, claim deleted', async () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE, phase: 'Succeeded' });
    const h = setup([pod, makeClaim({ name: 'c', reservedFor: [pod], allocated: true, finalizer: true })]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(calls(h.fake.actions)).toEqual([
      expect.objectContaining({ verb: 'update', subresource: 'status', reservedFor: [], allocated: false }),
      expect.objectContaining({ verb: 'update', subresource: undefined, finalizers: [] }),
      {
        verb: 'delete',
        resource: 'resourceclaims',
        namespace: NS,
        name: 'c',
        options: { preconditions: { uid: 'uidclaim1' } },
      },
    ]);
    expect(storedClaim(h, 'c')).toBeUndefined();
  });

  it('a generated claim of a running pod is kept', async () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE, phase: 'Running' });
    const h = setup([pod, makeClaim({ name: 'c' })]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions).toEqual([]);
  });

  it('a generated claim whose pod is not in the cache is left to the garbage collector', async () => {
    const h = setup([makeClaim({ name: 'c' })]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions).toEqual([]);
  });

  it('an allocated claim that was never reserved stays allocated', async () => {
    const h = setup([makeClaim({ name: 'c', owner: null, allocated: true, finalizer: true })]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions).toEqual([]);
  });

  it('a claim being deleted without reservations is deallocated, then its finalizer removed', async () => {
    const h = setup([
      makeClaim({ name: 'c', owner: null, allocated: true, finalizer: true, deleting: true }),
    ]);
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(calls(h.fake.actions)).toEqual([
      expect.objectContaining({
        verb: 'update',
        subresource: 'status',
        allocated: false,
        finalizers: [DELETE_PROTECTION_FINALIZER],
      }),
      expect.objectContaining({ verb: 'update', subresource: undefined, allocated: false, finalizers: [] }),
    ]);
  });

  it('a conflicting write fails the sync (to be retried), it never overwrites', async () => {
    const pod = makePod();
    const h = setup([
      makeClaim({ name: 'c', owner: null, reservedFor: [pod], allocated: true, finalizer: true }),
    ]);
    // Someone else changes the claim after our cache saw it.
    const stored = storedClaim(h, 'c')!;
    stored.metadata.labels = { touched: 'yes' };
    h.fake.tracker.add({
      ...stored,
      metadata: { ...stored.metadata, resourceVersion: undefined },
    } as KubeObject);
    await expect(h.controller.reconcile(`claim:${NS}/c`)).rejects.toMatchObject({ code: 409 });
    expect(storedClaim(h, 'c')?.status?.reservedFor).toHaveLength(1);
  });

  it('unsupported reservedFor entries: pod entries are still cleaned, then the key fails for a retry', async () => {
    const pod = makePod();
    const claim = makeClaim({ name: 'c', owner: null, reservedFor: [pod], allocated: true, finalizer: true });
    claim.status!.reservedFor!.push({
      apiGroup: 'example.com',
      resource: 'widgets',
      name: 'w',
      uid: 'widget-uid',
    });
    const h = setup([claim]);
    await expect(h.controller.reconcile(`claim:${NS}/c`)).rejects.toThrow(
      'unsupported ReservedFor entry: {"apiGroup":"example.com","resource":"widgets","name":"w","uid":"widget-uid"}',
    );
    expect(calls(h.fake.actions)).toEqual([
      getPod(),
      expect.objectContaining({ verb: 'update', subresource: 'status', reservedFor: ['w'], allocated: true }),
    ]);
  });

  it('unknown keys are errors', async () => {
    const h = setup();
    await expect(h.controller.reconcile('node:x/y')).rejects.toThrow('unexpected key prefix');
    await expect(h.controller.reconcile('garbage')).rejects.toThrow('unexpected key');
  });
});

describe('log verbosity (upstream klog levels)', () => {
  it('a claim created, reserved, released and deleted prints nothing below -v 4, as kube-controller-manager', async () => {
    const logger = new MemoryLogger();
    // Create (V(4) upstream) for a scheduled pod whose claim is not allocated yet.
    const created = setup([makePod({ nodeName: NODE }), makeTemplate()], [], { logger });
    await created.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    // Reserve (V(5)) once allocated.
    const pod = makePod({ claimName: 'generated', nodeName: NODE });
    const reserve = setup([pod, makeTemplate(), makeClaim({ name: 'generated', allocated: true })], [], {
      logger,
    });
    await reserve.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    // The pod is done: reservation dropped (V(6) reason), claim deallocated and deleted (V(5)).
    const done = makePod({ claimName: 'c', nodeName: NODE, phase: 'Succeeded' });
    const release = setup(
      [done, makeClaim({ name: 'c', reservedFor: [done], allocated: true, finalizer: true })],
      [],
      {
        logger,
      },
    );
    await release.controller.reconcile(`claim:${NS}/c`);
    release.syncCaches();
    await release.controller.reconcile(`claim:${NS}/c`); // gone now
    await release.controller.reconcile(`pod:${NS}/${POD_NAME}`); // done

    expect(release.fake.actions.map((a) => a.verb)).toContain('delete');
    expect(logger.printedAt(3)).toEqual([]);
    expect(logger.lines.map((l) => [l.v, l.msg])).toEqual([
      [4, 'created ResourceClaim'],
      [5, 'reserve claim for pod'],
      [6, 'remove reservation because pod will not run anymore'],
      [5, 'removed stale reservations'],
      [5, 'deleting unused generated claim'],
      [5, 'nothing to do for claim, it is gone'],
      [5, 'nothing to do for pod, it is done'],
    ]);
  });
});

describe('event handler traces (upstream V(6))', () => {
  it('say why a key was or was not queued, only at -v 6', () => {
    const logger = new MemoryLogger();
    const h = setup([makeTemplate()], [], { logger });
    h.controller.podChanged(makePod(), false);
    const done = makePod({ claimName: 'c', nodeName: NODE, phase: 'Succeeded' });
    h.controller.podChanged(done, true);
    h.controller.claimChanged(makeClaim({ name: 'orphan' }), false);

    expect(logger.printedAt(5)).toEqual([]);
    expect(logger.lines.map((l) => [l.v, l.msg, l.meta?.reason ?? l.meta?.key])).toEqual([
      [6, 'pod with resource claims changed', undefined],
      [6, 'Not touching claims', 'pod is not done'],
      [6, 'enqueing pod', 'a claim to create or reserve'],
      [6, 'pod got deleted', undefined],
      [6, 'pod with resource claims changed', undefined],
      [6, 'Process claim', 'pod got removed'],
      [6, 'enqueing new or updated claim', `claim:${NS}/orphan`],
      [6, 'unrelated to any known pod', undefined],
    ]);
  });
});

describe('event handlers', () => {
  it('a pod whose template claim is not created yet is enqueued', () => {
    const h = setup([makeTemplate()]);
    h.controller.podChanged(makePod(), false);
    expect(h.queue.added).toEqual([`pod:${NS}/${POD_NAME}`]);
  });

  it('pods without claims and pods with nothing to do are ignored', () => {
    const plain = makePod();
    plain.spec!.resourceClaims = [];
    const settled = makePod({ claimName: 'c', nodeName: NODE, phase: 'Running' });
    const h = setup([makeClaim({ name: 'c', reservedFor: [settled], allocated: true })]);
    h.controller.podChanged(plain, false);
    h.controller.podChanged(settled, false);
    expect(h.queue.added).toEqual([]);
  });

  it('a scheduled pod with an allocated, unreserved claim is enqueued', () => {
    const h = setup([makeClaim({ name: 'c', allocated: true })]);
    h.controller.podChanged(makePod({ claimName: 'c', nodeName: NODE }), false);
    expect(h.queue.added).toEqual([`pod:${NS}/${POD_NAME}`]);
  });

  it('a done pod enqueues its claims; a deleted one also is remembered', async () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE, phase: 'Succeeded' });
    const h = setup([makeClaim({ name: 'c', reservedFor: [pod], allocated: true, finalizer: true })]);
    h.controller.podChanged(pod, false);
    expect(h.queue.added).toEqual([`claim:${NS}/c`]);
    h.controller.podChanged(pod, true);
    expect(h.queue.added).toEqual([`claim:${NS}/c`, `claim:${NS}/c`]);
    // Remembered: the sync drops the reservation without asking the apiserver.
    await h.controller.reconcile(`claim:${NS}/c`);
    expect(h.fake.actions.filter((a) => a.verb === 'get')).toEqual([]);
  });

  it('a done pod also enqueues an owned claim its status does not name, and that claim is deleted', async () => {
    // The faults-claims suite caught this under watch cuts: the response to a create was lost,
    // the retry created a second claim, and the first stayed after the pod had finished.
    const pod = makePod({ claimName: 'recorded', nodeName: NODE, phase: 'Failed' });
    const h = setup([pod, makeClaim({ name: 'recorded' }), makeClaim({ name: 'orphan', uid: 'uidclaim2' })]);
    h.controller.podChanged(pod, false);
    expect(h.queue.added).toEqual([`claim:${NS}/recorded`, `claim:${NS}/orphan`]);
    await h.controller.reconcile(`claim:${NS}/orphan`);
    expect(h.fake.actions).toEqual([
      {
        verb: 'delete',
        resource: 'resourceclaims',
        namespace: NS,
        name: 'orphan',
        options: { preconditions: { uid: 'uidclaim2' } },
      },
    ]);
  });

  it('a pod whose template claim exists but belongs to another pod is not enqueued (as upstream)', () => {
    // Enqueuing it would make syncPod create a second claim for the same pod claim.
    const stranger = makePod({ name: 'stranger', uid: 'stranger-uid' });
    const h = setup([makeTemplate(), makeClaim({ name: 'taken', owner: stranger })]);
    h.controller.podChanged(makePod({ claimName: 'taken' }), false);
    h.controller.podChanged(makePod({ claimName: 'taken', nodeName: NODE }), false);
    expect(h.queue.added).toEqual([]);
  });

  it('an extended-resource claim (only in status.extendedResourceClaimStatus) is released when the pod is done or deleted', async () => {
    const extendedPod = (phase?: string): Pod => {
      const pod = makePod({ nodeName: NODE, ...(phase ? { phase } : {}) });
      pod.spec!.resourceClaims = [];
      pod.status!.extendedResourceClaimStatus = { resourceClaimName: 'ext', requestMappings: [] };
      return pod;
    };
    const claim = makeClaim({ name: 'ext', allocated: true, finalizer: true, reservedFor: [extendedPod()] });
    claim.metadata.annotations = { 'resource.kubernetes.io/extended-resource-claim': 'true' };
    const h = setup([claim]);
    h.controller.podChanged(extendedPod('Running'), false);
    expect(h.queue.added).toEqual([]);
    h.controller.podChanged(extendedPod('Succeeded'), false);
    expect(h.queue.added).toEqual([`claim:${NS}/ext`]);
    h.controller.podChanged(extendedPod('Running'), true);
    expect(h.queue.added).toEqual([`claim:${NS}/ext`, `claim:${NS}/ext`]);
    // The deleted pod's UID is remembered: the reservation goes without asking the apiserver.
    const resourceVersion = storedClaim(h, 'ext')!.metadata.resourceVersion;
    await h.controller.reconcile(`claim:${NS}/ext`);
    expect(calls(h.fake.actions)).toEqual([
      {
        verb: 'update',
        name: 'ext',
        subresource: 'status',
        resourceVersion,
        reservedFor: [],
        allocated: false,
        finalizers: [DELETE_PROTECTION_FINALIZER],
      },
      expect.objectContaining({ verb: 'update', name: 'ext', subresource: undefined }),
    ]);
  });

  it('a claim deleted after the informer delivered it is no longer answered from the mutation cache', async () => {
    const h = setup([makePod(), makeTemplate()]);
    await h.controller.reconcile(`pod:${NS}/${POD_NAME}`);
    const created = storedClaim(h, GENERATED)!;
    h.claims.getIndexer().add(created);
    h.claims.getIndexer().delete(created);
    h.controller.claimChanged(created, true);
    expect(h.controller.claimCache.get(`${NS}/${GENERATED}`)).toBeUndefined();
  });

  it('a claim event enqueues the claim and re-checks the pods that use it', () => {
    const pod = makePod({ claimName: 'c', nodeName: NODE });
    const claim = makeClaim({ name: 'c', allocated: true });
    const h = setup([pod, claim]);
    h.controller.claimChanged(claim, false);
    expect(h.queue.added).toEqual([`claim:${NS}/c`, `pod:${NS}/${POD_NAME}`]);
    h.queue.added.length = 0;
    h.controller.claimChanged(claim, true);
    expect(h.queue.added).toEqual([`pod:${NS}/${POD_NAME}`]);
  });

  it('handlers are wired to the informers', () => {
    const h = setup([makeTemplate()]);
    h.pods.handlers[0].onAdd?.(makePod(), false);
    h.claims.handlers[0].onAdd?.(makeClaim({ name: 'x' }), false);
    expect(h.queue.added).toEqual([`pod:${NS}/${POD_NAME}`, `claim:${NS}/x`]);
  });
});

describe('resource claims gauge', () => {
  it('is computed from the cache at scrape time', async () => {
    const userClaim = makeClaim({ name: 'user', owner: null, allocated: true });
    const extended = makeClaim({ name: 'ext', owner: null });
    extended.metadata.annotations = { 'resource.kubernetes.io/extended-resource-claim': 'true' };
    const h = setup([makeClaim({ name: 'gen' }), userClaim, extended]);
    const lines = async () =>
      (await h.registry.getSingleMetricAsString('resourceclaim_controller_resource_claims'))
        .split('\n')
        .filter((l) => !l.startsWith('#'));
    expect((await lines()).sort()).toEqual([
      'resourceclaim_controller_resource_claims{allocated="false",admin_access="false",source="extended_resource"} 1',
      'resourceclaim_controller_resource_claims{allocated="false",admin_access="false",source="resource_claim_template"} 1',
      'resourceclaim_controller_resource_claims{allocated="true",admin_access="false",source=""} 1',
    ]);
    h.claims.getIndexer().delete(userClaim);
    expect(await lines()).not.toContain(
      'resourceclaim_controller_resource_claims{allocated="true",admin_access="false",source=""} 1',
    );
  });
});

/** Play the kubelet: the pod's phase becomes Succeeded in the apiserver. */
function finish(h: ReturnType<typeof setup>, name: string): void {
  const pod = h.fake.tracker.get(Resources.pods, NS, name) as Pod;
  h.fake.tracker.add({
    ...pod,
    metadata: { ...pod.metadata, resourceVersion: undefined },
    status: { ...pod.status, phase: 'Succeeded' },
  } as Pod);
}

describe('many pods on one shared claim (fake apiserver, conflicts injected)', () => {
  it('50 pods finish at once: every reservation removed exactly once, allocation cleared only at the end, a concurrent addition survives', async () => {
    const pods = Array.from({ length: 50 }, (_, i) =>
      makePod({ name: `p${i}`, uid: `u${i}`, template: false, nodeName: NODE, phase: 'Running' }),
    );
    const shared = makeClaim({
      name: 'shared',
      owner: null,
      reservedFor: pods,
      allocated: true,
      finalizer: true,
    });
    const h = setup([...pods, shared]);

    // Every pod finishes (the kubelet writes the phase); their handlers all enqueue the same claim key.
    for (const pod of pods) finish(h, pod.metadata.name!);
    h.syncCaches();
    for (const pod of pods)
      h.controller.podChanged(h.pods.getIndexer().get(`${NS}/${pod.metadata.name}`)!, false);
    expect(new Set(h.queue.added)).toEqual(new Set([`claim:${NS}/shared`]));

    // While the first sync runs, the scheduler reserves the claim for a newcomer (a patch):
    // our PUT carries the old resourceVersion and must conflict, not drop the newcomer.
    const newcomer = makePod({
      name: 'late',
      uid: 'late-uid',
      template: false,
      nodeName: NODE,
      phase: 'Running',
    });
    h.fake.tracker.add(newcomer);
    h.pods.getIndexer().add(h.fake.tracker.get(Resources.pods, NS, 'late') as Pod);
    let injected = false;
    h.fake.prependReactor('update', 'resourceclaims', () => {
      if (!injected) {
        injected = true;
        const current = storedClaim(h, 'shared')!;
        current.status!.reservedFor!.push({ resource: 'pods', name: 'late', uid: 'late-uid' });
        h.fake.tracker.add({
          ...current,
          metadata: { ...current.metadata, resourceVersion: undefined },
        } as KubeObject);
      }
      return undefined;
    });
    // Many workers pick up the key "at once" (the real queue dedups; this is the worst case).
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => h.controller.reconcile(`claim:${NS}/shared`)),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(storedClaim(h, 'shared')!.status!.reservedFor).toHaveLength(51);

    // The retry (after the informer caught up) removes the 50 and keeps the newcomer.
    h.syncCaches();
    await h.controller.reconcile(`claim:${NS}/shared`);
    let stored = storedClaim(h, 'shared')!;
    expect(stored.status!.reservedFor).toEqual([{ resource: 'pods', name: 'late', uid: 'late-uid' }]);
    expect(stored.status!.allocation).toEqual(ALLOCATION);

    // The newcomer finishes too: only now is the claim deallocated and released.
    finish(h, 'late');
    h.syncCaches();
    h.fake.clearActions();
    await h.controller.reconcile(`claim:${NS}/shared`);
    stored = storedClaim(h, 'shared')!;
    expect(stored.status!.reservedFor).toEqual([]);
    expect(stored.status!.allocation).toBeUndefined();
    expect(stored.metadata.finalizers).toEqual([]);
    expect(calls(h.fake.actions)).toEqual([
      expect.objectContaining({ verb: 'update', subresource: 'status', reservedFor: [], allocated: false }),
      expect.objectContaining({ verb: 'update', subresource: undefined, finalizers: [] }),
    ]);

    // Each pod's entry was removed by exactly one successful write.
    const successfulStatusWrites = h.fake.actions.filter(
      (a) => a.verb === 'update' && a.subresource === 'status',
    );
    expect(successfulStatusWrites).toHaveLength(1);
  });
});
