/**
 * service-cidr-controller: finalizer, Ready condition and safe deletion for ServiceCIDRs.
 * The controller itself is in controller.ts, the CIDR maths in cidr.ts.
 */
import type { ControllerDefinition, PolicyRule } from '../../lib/controller/index.js';
import { CONTROLLER_NAME, DEFAULT_WORKERS } from './controller.js';

export * from './controller.js';

export const CONCURRENT_SYNCS_FLAG = 'concurrent-service-cidr-syncs';

/** What the controller reads and writes, and nothing more; manifests/ is generated from this. */
export const serviceCIDRControllerRBAC: PolicyRule[] = [
  { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['servicecidrs/status', 'servicecidrs/finalizers'],
    verbs: ['patch', 'update'],
  },
  { apiGroups: ['networking.k8s.io'], resources: ['ipaddresses'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'update', 'patch'] },
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
  create() {
    // Interim: wired to the work queue and runner once lib/workqueue and lib/controller land.
    throw new Error('service-cidr-controller is not wired to the runner yet');
  },
};
