import type { ControllerDefinition } from '../../lib/controller/index.js';

// Placeholder until the controller lands; the manager refuses to start it.
export const resourceClaimController: ControllerDefinition = {
  name: 'resourceclaim-controller',
  enabledByDefault: true,
  flags: [],
  rbac: [],
  create() {
    throw new Error('resourceclaim-controller is not implemented yet');
  },
};
