/**
 * Metrics of the ResourceClaim controller, named as in kube-controller-manager so
 * existing dashboards work: a counter of create calls and a gauge of claims that is
 * computed from the informer cache when scraped (no bookkeeping in event handlers
 * that could drift after a missed event).
 */
import type { ResourceClaim } from '../../lib/api/index.js';
import { Counter, Gauge, getOrCreate } from '../../lib/metrics/index.js';
import type { Registry } from '../../lib/metrics/index.js';
import { claimSource, isAllocated, specNeedsAdminAccess } from './names.js';

export const CREATES_TOTAL = 'resourceclaim_controller_creates_total';
export const RESOURCE_CLAIMS = 'resourceclaim_controller_resource_claims';

export interface ResourceClaimMetrics {
  /** Count one ResourceClaim create call. */
  recordCreate(success: boolean, adminAccess: boolean): void;
}

/** Register (or reuse) the metrics in `registry`; the gauge lists `claims()` at every scrape. */
export function newResourceClaimMetrics(
  registry: Registry,
  claims: () => ResourceClaim[],
): ResourceClaimMetrics {
  const creates = getOrCreate(
    registry,
    CREATES_TOTAL,
    () =>
      new Counter({
        name: CREATES_TOTAL,
        help: 'Number of ResourceClaim create requests, by outcome and by whether admin access was asked for',
        labelNames: ['status', 'admin_access'] as const,
        registers: [registry],
      }),
  );
  getOrCreate(
    registry,
    RESOURCE_CLAIMS,
    () =>
      new Gauge({
        name: RESOURCE_CLAIMS,
        help: 'Number of ResourceClaims in the cache, by allocation, admin access and source',
        labelNames: ['allocated', 'admin_access', 'source'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const claim of claims()) {
            this.inc({
              allocated: String(isAllocated(claim)),
              admin_access: String(specNeedsAdminAccess(claim.spec)),
              source: claimSource(claim),
            });
          }
        },
      }),
  );
  return {
    recordCreate(success, adminAccess) {
      creates.inc({ status: success ? 'success' : 'failure', admin_access: String(adminAccess) });
    },
  };
}
