/**
 * The in-process scheduler. Every tick it claims at most one due job (SKIP LOCKED, with a lease),
 * runs its handler and schedules the next run. Safe with any number of Tally processes.
 */
import { newId } from '../domain/ids.ts';
import type { Logger } from '../http/logger.ts';
import type { Db } from '../store/db.ts';

export interface JobDefinition {
  name: string;
  everySeconds: number;
  run: () => Promise<unknown>;
}

const LEASE_SECONDS = 60;

export async function registerJobs(db: Db, jobs: JobDefinition[]): Promise<void> {
  for (const job of jobs) {
    await db.query(
      `INSERT INTO scheduled_jobs (name, every_seconds) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET every_seconds = EXCLUDED.every_seconds`,
      [job.name, job.everySeconds],
    );
  }
}

/**
 * Whether a job's outcome reports work done: a count above zero anywhere in it (flags such as
 * `done` say nothing of work). Runs that found nothing to do, most runs of a job due every few
 * seconds, are not logged.
 */
export function didWork(outcome: unknown): boolean {
  if (typeof outcome === 'number') return outcome > 0;
  if (typeof outcome === 'bigint') return outcome > 0n;
  if (Array.isArray(outcome)) return outcome.some(didWork);
  if (outcome !== null && typeof outcome === 'object') return Object.values(outcome).some(didWork);
  return false;
}

/** Claims and runs one due job; returns its name, or null when nothing was due. */
export async function runDueJob(
  db: Db,
  jobs: JobDefinition[],
  worker: string,
  logger: Logger,
): Promise<string | null> {
  const [claimed] = await db.query<{ name: string }>(
    `UPDATE scheduled_jobs SET locked_by = $1, locked_until = now() + make_interval(secs => $2), last_started_at = now()
      WHERE name = (SELECT name FROM scheduled_jobs
                     WHERE next_run_at <= now() AND (locked_until IS NULL OR locked_until < now())
                       AND name = ANY($3::text[])
                     ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING name`,
    [worker, LEASE_SECONDS, jobs.map((j) => j.name)],
  );
  if (!claimed) return null;
  const job = jobs.find((j) => j.name === claimed.name)!;
  let error: string | null = null;
  try {
    const outcome = await job.run();
    if (didWork(outcome)) logger.info({ job: job.name, worker, outcome });
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    logger.error({ job: job.name, worker, error });
  }
  await db.query(
    `UPDATE scheduled_jobs SET next_run_at = now() + make_interval(secs => every_seconds), locked_by = NULL,
            locked_until = NULL, last_finished_at = now(), last_error = $3
      WHERE name = $1 AND locked_by = $2`,
    [job.name, worker, error],
  );
  return job.name;
}

export interface JobState {
  name: string;
  /** Whole seconds since the job was due; 0 when it is not due yet. */
  behindSeconds: number;
  /** When its last run ended (whole Unix seconds), or null before its first run. */
  lastFinishedAt: number | null;
  lastRunFailed: boolean;
}

/** Every job as the database records it, whichever process ran it. */
export async function jobStates(db: Db): Promise<JobState[]> {
  const rows = await db.query<{ name: string; behind: string; finished: string | null; failed: boolean }>(
    `SELECT name, floor(greatest(0, extract(epoch FROM now() - next_run_at)))::bigint AS behind,
            floor(extract(epoch FROM last_finished_at))::bigint AS finished,
            last_error IS NOT NULL AS failed
       FROM scheduled_jobs ORDER BY name`,
  );
  return rows.map((r) => ({
    name: r.name,
    behindSeconds: Number(r.behind),
    lastFinishedAt: r.finished === null ? null : Number(r.finished),
    lastRunFailed: r.failed,
  }));
}

/** Starts ticking; the returned function stops it (after the job in progress, if any). */
export function startScheduler(
  db: Db,
  jobs: JobDefinition[],
  logger: Logger,
  tickMs = 1000,
): () => Promise<void> {
  const worker = newId('wrk');
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        // Drain what is due now, one job at a time.
        while (!stopped && (await runDueJob(db, jobs, worker, logger)) !== null) {}
      } catch (e) {
        logger.error({ worker, error: e instanceof Error ? e.message : String(e) });
      }
    });
  }, tickMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
