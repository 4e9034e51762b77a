/**
 * Unit-test fixtures for the ResourceClaim controller: objects shaped like upstream's
 * controller_test.go, an informer stand-in whose indexer tests prime by hand, and a queue
 * that records the keys handlers add. Not used by production code.
 */
import type { KubeObject, Pod, ResourceClaim, ResourceClaimTemplate } from '../../lib/api/index.js';
import { FakeKubeClient, Resources } from '../../lib/client/index.js';
import { FakeClock } from '../../lib/clock/index.js';
import { FakeEventRecorder } from '../../lib/events/index.js';
import { FakeSharedIndexInformer, type Indexer } from '../../lib/informer/index.js';
import { nopLogger, type Logger } from '../../lib/log/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { RecordingQueue } from '../../lib/workqueue/index.js';
import { ResourceClaimController } from './controller.js';
import { DELETE_PROTECTION_FINALIZER, POD_CLAIM_NAME_ANNOTATION } from './names.js';

export const NS = 'my-namespace';
export const POD_NAME = 'test-pod';
export const POD_UID = 'uidpod1';
export const POD_CLAIM = 'acme-resource';
export const TEMPLATE = 'my-template';
export const NODE = 'worker';
export const CLAIM_SPEC = {
  devices: { requests: [{ name: 'req-0', exactly: { deviceClassName: 'my-class' } }] },
};
export const ALLOCATION = {
  devices: { results: [{ request: 'req-0', driver: 'driver.example.com', pool: 'worker', device: 'dev-0' }] },
};

export function makePod(
  opts: {
    name?: string;
    uid?: string;
    nodeName?: string;
    claimName?: string | null;
    phase?: string;
    template?: boolean;
  } = {},
): Pod {
  const name = opts.name ?? POD_NAME;
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, uid: opts.uid ?? POD_UID },
    spec: {
      containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }],
      resourceClaims: [
        opts.template === false
          ? { name: POD_CLAIM, resourceClaimName: 'shared' }
          : { name: POD_CLAIM, resourceClaimTemplateName: TEMPLATE },
      ],
    },
    status: {},
  };
  if (opts.nodeName) pod.spec!.nodeName = opts.nodeName;
  if (opts.claimName !== undefined)
    pod.status!.resourceClaimStatuses = [{ name: POD_CLAIM, resourceClaimName: opts.claimName }];
  if (opts.phase) pod.status!.phase = opts.phase as NonNullable<Pod['status']>['phase'];
  return pod;
}

export function makeTemplate(): ResourceClaimTemplate {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaimTemplate',
    metadata: { name: TEMPLATE, namespace: NS },
    spec: { metadata: { labels: { team: 'a' }, annotations: { note: 'from-template' } }, spec: CLAIM_SPEC },
  };
}

export function ownerRef(pod: Pod) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    name: pod.metadata.name!,
    uid: pod.metadata.uid!,
    controller: true,
  };
}

/** A claim as this controller generates it for `pod` (or a plain one with `owner: null`). */
export function makeClaim(
  opts: {
    name?: string;
    owner?: Pod | null;
    reservedFor?: Pod[];
    allocated?: boolean;
    finalizer?: boolean;
    uid?: string;
    deleting?: boolean;
  } = {},
): ResourceClaim {
  const owner = opts.owner === undefined ? makePod() : opts.owner;
  const claim: ResourceClaim = {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: {
      name: opts.name ?? `${POD_NAME}-${POD_CLAIM}-abcde`,
      namespace: NS,
      uid: opts.uid ?? 'uidclaim1',
      ...(owner
        ? { ownerReferences: [ownerRef(owner)], annotations: { [POD_CLAIM_NAME_ANNOTATION]: POD_CLAIM } }
        : {}),
      ...(opts.finalizer ? { finalizers: [DELETE_PROTECTION_FINALIZER] } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: CLAIM_SPEC,
    status: {},
  };
  if (opts.allocated) claim.status!.allocation = ALLOCATION;
  if (opts.reservedFor)
    claim.status!.reservedFor = opts.reservedFor.map((p) => ({
      resource: 'pods',
      name: p.metadata.name!,
      uid: p.metadata.uid!,
    }));
  return claim;
}

export interface Harness {
  fake: FakeKubeClient;
  clock: FakeClock;
  recorder: FakeEventRecorder;
  queue: RecordingQueue;
  registry: ReturnType<typeof newRegistry>;
  controller: ResourceClaimController;
  pods: FakeSharedIndexInformer<Pod>;
  claims: FakeSharedIndexInformer<ResourceClaim>;
  templates: FakeSharedIndexInformer<ResourceClaimTemplate>;
  /** Copy the tracker's current objects into the informer caches (what a watch would deliver). */
  syncCaches(): void;
}

/**
 * `objects` go to the fake apiserver and, as stored there (with resourceVersions), into the
 * caches; `apiOnly` objects exist only in the apiserver (the informer has not seen them).
 */
export function setup(
  objects: KubeObject[] = [],
  apiOnly: KubeObject[] = [],
  opts: { logger?: Logger } = {},
): Harness {
  const clock = new FakeClock();
  const fake = new FakeKubeClient([...objects, ...apiOnly], { clock });
  const pods = new FakeSharedIndexInformer<Pod>(Resources.pods);
  const claims = new FakeSharedIndexInformer<ResourceClaim>(Resources.resourceClaims);
  const templates = new FakeSharedIndexInformer<ResourceClaimTemplate>(Resources.resourceClaimTemplates);
  const queue = new RecordingQueue();
  const recorder = new FakeEventRecorder();
  const registry = newRegistry();
  const controller = new ResourceClaimController({
    client: fake,
    podInformer: pods,
    claimInformer: claims,
    templateInformer: templates,
    queue,
    recorder,
    logger: opts.logger ?? nopLogger(),
    registry,
    clock,
  });
  const hidden = new Set(apiOnly.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
  const syncCaches = () => {
    for (const [informer, ref] of [
      [pods, Resources.pods],
      [claims, Resources.resourceClaims],
      [templates, Resources.resourceClaimTemplates],
    ] as const) {
      const objs = fake.tracker
        .list(ref)
        .filter((o) => !hidden.has(`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
      (informer.getIndexer() as Indexer<KubeObject>).replace(objs);
    }
  };
  syncCaches();
  return { fake, clock, recorder, queue, registry, controller, pods, claims, templates, syncCaches };
}
