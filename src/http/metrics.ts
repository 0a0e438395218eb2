/** Prometheus metrics for /metrics. One registry per app so tests can build many apps. */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { metricsOf } from './clusterMetrics.ts';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    /** What /metrics answers (under TALLY_WORKERS, every worker's figures summed). */
    text: metricsOf(registry),
    requests: new Counter({
      name: 'tally_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'tally_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    events: new Counter({
      name: 'tally_events_total',
      help: 'Usage events by outcome',
      labelNames: ['status'],
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
