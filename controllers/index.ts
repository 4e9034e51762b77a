/** The controllers built into ts-kcm, in the order the manager starts them. */
import type { ControllerDefinition } from '../lib/controller/index.js';
import { serviceCIDRController } from './servicecidr/index.js';
import { resourceClaimController } from './resourceclaim/index.js';
import { serviceLBIPAMController } from './lbipam/index.js';

export const builtinControllers: ControllerDefinition[] = [
  serviceCIDRController,
  resourceClaimController,
  serviceLBIPAMController,
];
