import type { ControllerDefinition } from '../../lib/controller/index.js';

// Placeholder until the controller lands; the manager refuses to start it.
export const serviceCIDRController: ControllerDefinition = {
  name: 'service-cidr-controller',
  enabledByDefault: true,
  flags: [],
  rbac: [],
  create() {
    throw new Error('service-cidr-controller is not implemented yet');
  },
};
