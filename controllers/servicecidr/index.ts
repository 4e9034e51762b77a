/**
 * service-cidr-controller: finalizer, Ready condition and safe deletion for ServiceCIDRs.
 * The controller itself is in controller.ts, the CIDR maths in cidr.ts.
 */
import type { IPAddress, ServiceCIDR } from '../../lib/api/index.js';
import { Resources } from '../../lib/client/index.js';
import { Controller, type ControllerDefinition, type PolicyRule } from '../../lib/controller/index.js';
import { keyAbortingReconciler, shardedQueue } from '../../lib/sharding/index.js';
import { defaultControllerRateLimiter, newRateLimitingQueue } from '../../lib/workqueue/index.js';
import {
  CONTROLLER_NAME,
  DEFAULT_WORKERS,
  MAX_RETRIES,
  QUEUE_NAME,
  ServiceCIDRController,
} from './controller.js';

export * from './controller.js';

export const CONCURRENT_SYNCS_FLAG = 'concurrent-service-cidr-syncs';

/** What the controller reads and writes, and nothing more; manifests/ is generated from this. */
export const serviceCIDRControllerRBAC: PolicyRule[] = [
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['servicecidrs'],
    verbs: ['list', 'watch', 'patch'],
  },
  { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs/status'], verbs: ['patch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ipaddresses'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
];

export const serviceCIDRController: ControllerDefinition = {
  name: CONTROLLER_NAME,
  enabledByDefault: true,
  flags: [
    {
      name: CONCURRENT_SYNCS_FLAG,
      description: 'The number of ServiceCIDR objects that are allowed to sync concurrently.',
      defaultValue: DEFAULT_WORKERS,
    },
  ],
  rbac: serviceCIDRControllerRBAC,
  sharding: {
    shardable: true,
    // Keys are ServiceCIDR names and each reconcile writes only its own ServiceCIDR. canDelete
    // reads every ServiceCIDR and IPAddress, but from the cache, which every replica keeps in
    // full; a peer's write reaches that cache by the same watch as our own writes do, so two
    // keys on two replicas race exactly as two keys on two workers of one process do upstream.
    reason: 'keys are ServiceCIDR names; every replica caches all ServiceCIDRs and IPAddresses',
  },
  create(ctx) {
    const logger = ctx.logger.child({ controller: CONTROLLER_NAME });
    const serviceCIDRInformer = ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs);
    const queue = shardedQueue(
      newRateLimitingQueue<string>({
        name: QUEUE_NAME,
        clock: ctx.clock,
        rateLimiter: defaultControllerRateLimiter(ctx.clock),
        registry: ctx.metrics,
      }),
      ctx.sharding,
      {
        controller: CONTROLLER_NAME,
        keys: () => serviceCIDRInformer.getIndexer().listKeys(),
        registry: ctx.metrics,
      },
    );
    const reconciler = new ServiceCIDRController({
      client: ctx.client,
      serviceCIDRInformer,
      ipAddressInformer: ctx.informers.informerFor<IPAddress>(Resources.ipAddresses),
      queue,
      recorder: ctx.eventRecorder(CONTROLLER_NAME),
      logger,
      clock: ctx.clock,
    });
    return new Controller({
      name: CONTROLLER_NAME,
      queue,
      // Each reconcile's signal also aborts when its key moves to another replica of the ring.
      reconciler: keyAbortingReconciler(reconciler, queue),
      workers: ctx.flags[CONCURRENT_SYNCS_FLAG] ?? DEFAULT_WORKERS,
      maxRetries: MAX_RETRIES,
      logger,
      registry: ctx.metrics,
      clock: ctx.clock,
    });
  },
};
