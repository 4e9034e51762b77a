/**
 * REST client metrics with client-go's names and labels (k8s.io/client-go/tools/metrics as
 * registered by component-base), so dashboards built for kube-controller-manager work.
 */
import { Counter, getOrCreate, Histogram, type Registry } from '../metrics/index.js';

/** component-base's buckets for request latency. */
const latencyBuckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

export interface ClientMetrics {
  /** One finished request: `code` is the HTTP status, or '<error>' when no response came. */
  request(method: string, host: string, code: number | '<error>', seconds: number): void;
  rateLimiterWait(method: string, host: string, seconds: number): void;
}

export const noClientMetrics: ClientMetrics = { request: () => {}, rateLimiterWait: () => {} };

export function newClientMetrics(registry: Registry | undefined): ClientMetrics {
  if (!registry) return noClientMetrics;
  const total = getOrCreate(
    registry,
    'rest_client_requests_total',
    () =>
      new Counter({
        name: 'rest_client_requests_total',
        help: 'Number of HTTP requests, partitioned by status code, method, and host.',
        labelNames: ['code', 'method', 'host'],
        registers: [registry],
      }),
  );
  const duration = getOrCreate(
    registry,
    'rest_client_request_duration_seconds',
    () =>
      new Histogram({
        name: 'rest_client_request_duration_seconds',
        help: 'Request latency in seconds. Broken down by verb, and host.',
        labelNames: ['verb', 'host'],
        buckets: latencyBuckets,
        registers: [registry],
      }),
  );
  const limiter = getOrCreate(
    registry,
    'rest_client_rate_limiter_duration_seconds',
    () =>
      new Histogram({
        name: 'rest_client_rate_limiter_duration_seconds',
        help: 'Client side rate limiter latency in seconds. Broken down by verb, and host.',
        labelNames: ['verb', 'host'],
        buckets: latencyBuckets,
        registers: [registry],
      }),
  );
  return {
    request(method, host, code, seconds) {
      total.inc({ code: String(code), method, host });
      duration.observe({ verb: method, host }, seconds);
    },
    rateLimiterWait(method, host, seconds) {
      limiter.observe({ verb: method, host }, seconds);
    },
  };
}
