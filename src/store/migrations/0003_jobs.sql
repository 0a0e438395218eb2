-- Scheduled work, claimed with FOR UPDATE SKIP LOCKED under a lease: any number of Tally
-- processes may run the scheduler, each job runs in one of them at a time, and a job whose
-- process died is picked up again when its lease runs out.
CREATE TABLE scheduled_jobs (
  name text PRIMARY KEY,
  every_seconds integer NOT NULL CHECK (every_seconds > 0),
  next_run_at timestamptz NOT NULL DEFAULT now(),
  locked_by text,
  locked_until timestamptz,
  last_started_at timestamptz,
  last_finished_at timestamptz,
  last_error text
);
