/**
 * resourceclaim-controller: creates ResourceClaims from the templates pods ask for, and
 * releases, deallocates and deletes claims once their pods are done. See controller.ts
 * for the behaviour and README.md for which writes are patches and which are conflict-checked.
 */
import type { Pod, ResourceClaim, ResourceClaimTemplate } from '../../lib/api/index.js';
import { Resources } from '../../lib/client/index.js';
import { Controller } from '../../lib/controller/index.js';
import type { ControllerDefinition } from '../../lib/controller/index.js';
import { namespaceShardKey, keyAbortingReconciler, shardedQueue } from '../../lib/sharding/index.js';
import { newRateLimitingQueue } from '../../lib/workqueue/index.js';
import {
  CLAIM_KEY_PREFIX,
  CONTROLLER_NAME,
  EVENT_COMPONENT,
  POD_KEY_PREFIX,
  QUEUE_NAME,
  ResourceClaimController,
} from './controller.js';

export { ResourceClaimController } from './controller.js';

export const CONCURRENT_SYNCS_FLAG = 'concurrent-resourceclaim-syncs';
/** kube-controller-manager's default for --concurrent-resourceclaim-syncs. */
export const DEFAULT_CONCURRENT_SYNCS = 50;

export const resourceClaimController: ControllerDefinition = {
  name: CONTROLLER_NAME,
  // kube-controller-manager accepts this spelling too.
  aliases: ['resource-claim-controller'],
  enabledByDefault: true,
  flags: [
    {
      name: CONCURRENT_SYNCS_FLAG,
      description: 'The number of resource claims and pods that are allowed to sync concurrently.',
      defaultValue: DEFAULT_CONCURRENT_SYNCS,
    },
  ],
  rbac: [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
    {
      apiGroups: ['resource.k8s.io'],
      resources: ['resourceclaims'],
      verbs: ['list', 'watch', 'create', 'delete', 'update'],
    },
    { apiGroups: ['resource.k8s.io'], resources: ['resourceclaims/status'], verbs: ['update', 'patch'] },
    { apiGroups: ['resource.k8s.io'], resources: ['resourceclaimtemplates'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  ],
  sharding: {
    shardable: true,
    // Not by key: a `pod:ns/p` sync creates and reserves claims that `claim:ns/c` syncs release
    // and delete, so hashing the two kinds of key apart would put writers of one claim on two
    // replicas. Everything a key touches (pod, its claims, templates) lives in the key's
    // namespace, so hashing the namespace keeps all of it on one replica.
    shardKey: namespaceShardKey,
    reason: 'pod: and claim: keys hash by namespace, the unit every write of a key stays inside',
  },
  create(ctx) {
    const podInformer = ctx.informers.informerFor<Pod>(Resources.pods);
    const claimInformer = ctx.informers.informerFor<ResourceClaim>(Resources.resourceClaims);
    const queue = shardedQueue(
      newRateLimitingQueue<string>({ name: QUEUE_NAME, clock: ctx.clock, registry: ctx.metrics }),
      ctx.sharding,
      {
        controller: CONTROLLER_NAME,
        keys: () => [
          ...podInformer
            .getIndexer()
            .listKeys()
            .map((k) => POD_KEY_PREFIX + k),
          ...claimInformer
            .getIndexer()
            .listKeys()
            .map((k) => CLAIM_KEY_PREFIX + k),
        ],
        registry: ctx.metrics,
      },
    );
    const logger = ctx.logger.child({ controller: CONTROLLER_NAME });
    const reconciler = new ResourceClaimController({
      client: ctx.client,
      podInformer,
      claimInformer,
      templateInformer: ctx.informers.informerFor<ResourceClaimTemplate>(Resources.resourceClaimTemplates),
      queue,
      recorder: ctx.eventRecorder(EVENT_COMPONENT),
      logger,
      registry: ctx.metrics,
      clock: ctx.clock,
    });
    // No maxRetries: a failing key keeps coming back with growing backoff, as upstream.
    return new Controller({
      name: CONTROLLER_NAME,
      queue,
      // Each reconcile's signal also aborts when its key moves to another replica of the ring.
      reconciler: keyAbortingReconciler(reconciler, queue),
      workers: ctx.flags[CONCURRENT_SYNCS_FLAG] ?? DEFAULT_CONCURRENT_SYNCS,
      logger,
      registry: ctx.metrics,
      clock: ctx.clock,
    });
  },
};
