/**
 * service-lb-ipam-controller: LoadBalancer IPs from LoadBalancerIPPools (see controller.ts;
 * the address maths is in pool.ts). Built on the public `ts-kcm` API only.
 */
export { serviceLBIPAMController } from './controller.js';
export * from './types.js';
