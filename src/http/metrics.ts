/** Prometheus metrics for /metrics. One registry per app so tests can build many apps. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type JobState, jobStates } from '../jobs/runner.ts';
import type { Db } from '../store/db.ts';
import { metricsOf } from './clusterMetrics.ts';

export function createMetrics(db: Db) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerJobGauges(db, registry);
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
    holds: new Counter({
      name: 'tally_authorizations_total',
      help: 'Answers of POST /v1/authorizations: approved or denied, with the reason (none when there is none)',
      labelNames: ['decision', 'reason'],
      registers: [registry],
    }),
  };
}

/**
 * The background jobs as the database records them (every process's runs, so each worker reports
 * the same figures: under TALLY_WORKERS the first is kept, not the sum). `behind` is the one to
 * alert on: a job due long ago that no process runs (TALLY_JOBS=0 everywhere, or a run stuck) lets
 * holds and grants outlive their expiry.
 */
function registerJobGauges(db: Db, registry: Registry): void {
  // The gauges are read together at each scrape: one query for the three.
  let reading: Promise<JobState[]> | null = null;
  const states = () =>
    (reading ??= jobStates(db)
      // Database down: /readyz says so, and the process's own figures still answer.
      .catch((): JobState[] => [])
      .finally(() => {
        reading = null;
      }));
  const gauge = (name: string, help: string, value: (job: JobState) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['job'],
      aggregator: 'first',
      registers: [registry],
      async collect() {
        this.reset();
        for (const job of await states()) {
          const v = value(job);
          if (v !== null) this.set({ job: job.name }, v);
        }
      },
    });
  gauge(
    'tally_job_behind_seconds',
    'Seconds since the job was due, 0 when it is not due yet',
    (j) => j.behindSeconds,
  );
  gauge(
    'tally_job_last_finished_timestamp_seconds',
    'When its last run ended (Unix time)',
    (j) => j.lastFinishedAt,
  );
  gauge('tally_job_last_run_failed', '1 when its last run ended in an error, else 0', (j) =>
    j.lastRunFailed ? 1 : 0,
  );
}
export type Metrics = ReturnType<typeof createMetrics>;
