/**
 * Package metrics: the Prometheus registry the manager serves on /metrics. Every part
 * registers into the registry it is given (never the global one) so tests and several
 * managers in one process do not collide.
 */
import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Registry, Counter, Gauge, Histogram };

export function newRegistry(opts: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Return the metric already registered under `name`, or register the one `make` builds. */
export function getOrCreate<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}
