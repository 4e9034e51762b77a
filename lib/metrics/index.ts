/**
 * Package metrics: the Prometheus registry the manager serves on /metrics. Every part
 * registers into the registry it is given (never the global one) so tests and several
 * managers in one process do not collide.
 *
 * prom-client's classes come from their own files: its index also loads the Pushgateway,
 * the cluster aggregator and the default (process) metrics, whose CPU metric pulls in
 * @opentelemetry/api (51 modules) — about 18 MB of resident memory and 50 ms of start-up
 * (Node 24) for a process that does not serve metrics. The process metrics are loaded only
 * when asked for.
 */
import { createRequire } from 'node:module';
import type {
  Counter as PromCounter,
  DefaultMetricsCollectorConfiguration,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  PrometheusContentType,
  Registry as PromRegistry,
  RegistryContentType,
} from 'prom-client';

const require = createRequire(import.meta.url);

const RegistryBase = require('prom-client/lib/registry') as typeof PromRegistry;
const CounterBase = require('prom-client/lib/counter') as typeof PromCounter;
const GaugeBase = require('prom-client/lib/gauge') as typeof PromGauge;
const HistogramBase = require('prom-client/lib/histogram') as typeof PromHistogram;

// prom-client's own classes under the names of its index (subclasses add nothing).
export class Registry<T extends RegistryContentType = PrometheusContentType> extends RegistryBase<T> {}
export class Counter<T extends string = string> extends CounterBase<T> {}
export class Gauge<T extends string = string> extends GaugeBase<T> {}
export class Histogram<T extends string = string> extends HistogramBase<T> {}

/**
 * A registry; with `processMetrics`, also the process_* and nodejs_* metrics of prom-client's
 * default set (CPU, memory, file descriptors, event-loop lag, GC).
 */
export function newRegistry(opts: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) {
    const collect = require('prom-client/lib/defaultMetrics') as (
      config: DefaultMetricsCollectorConfiguration<RegistryContentType>,
    ) => void;
    collect({ register: registry });
  }
  return registry;
}

/** Return the metric already registered under `name`, or register the one `make` builds. */
export function getOrCreate<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}
