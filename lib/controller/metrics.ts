/**
 * Per-controller reconcile metrics, shaped after controller-runtime's
 * controller_runtime_reconcile_* family under our own prefix:
 * - ts_kcm_reconcile_total{controller, result="success|error|requeue_after|shard_moved"} (counter);
 *   shard_moved: the reconcile failed after its key moved to another replica of the sharding
 *   ring (its signal aborted). Not an error: the key is that replica's now.
 * - ts_kcm_reconcile_errors_total{controller} (counter; result="error" only)
 * - ts_kcm_reconcile_time_seconds{controller} (histogram)
 * Controllers share the metric objects of a registry; each writes its own label.
 */
import { Counter, Histogram, getOrCreate } from '../metrics/index.js';
import type { Registry } from '../metrics/index.js';

export const RECONCILE_METRIC_NAMES = {
  total: 'ts_kcm_reconcile_total',
  errors: 'ts_kcm_reconcile_errors_total',
  time: 'ts_kcm_reconcile_time_seconds',
} as const;

export type ReconcileOutcome = 'success' | 'error' | 'requeue_after' | 'shard_moved';

/** Every result label value, each pre-initialised to 0 per controller. */
export const RECONCILE_OUTCOMES: readonly ReconcileOutcome[] = [
  'success',
  'error',
  'requeue_after',
  'shard_moved',
];

/** controller-runtime's reconcile-time buckets: 5 ms to 60 s, dense below 1 s. */
export const RECONCILE_TIME_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

export interface ReconcileMetrics {
  observe(outcome: ReconcileOutcome, seconds: number): void;
}

export function reconcileMetrics(controller: string, registry: Registry | undefined): ReconcileMetrics {
  if (!registry) return { observe() {} };
  const n = RECONCILE_METRIC_NAMES;
  const total = getOrCreate(
    registry,
    n.total,
    () =>
      new Counter({
        name: n.total,
        help: 'Reconciles per controller and result.',
        labelNames: ['controller', 'result'],
        registers: [registry],
      }),
  );
  const errors = getOrCreate(
    registry,
    n.errors,
    () =>
      new Counter({
        name: n.errors,
        help: 'Reconciles that failed (threw), per controller.',
        labelNames: ['controller'],
        registers: [registry],
      }),
  );
  const time = getOrCreate(
    registry,
    n.time,
    () =>
      new Histogram({
        name: n.time,
        help: 'Seconds per reconcile, per controller.',
        labelNames: ['controller'],
        buckets: RECONCILE_TIME_BUCKETS,
        registers: [registry],
      }),
  );
  // Zero series up front, so a rate() over a controller that never failed is 0, not absent.
  for (const result of RECONCILE_OUTCOMES) total.inc({ controller, result }, 0);
  errors.inc({ controller }, 0);
  return {
    observe(outcome, seconds) {
      total.inc({ controller, result: outcome });
      if (outcome === 'error') errors.inc({ controller });
      time.observe({ controller }, seconds);
    },
  };
}
