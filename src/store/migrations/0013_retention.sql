-- Raw event retention. The operator's default is operator_settings 'raw_event_retention_months'
-- (absent: keep forever); an org that chose for itself has a row here. Only raw events are ever
-- purged: rollups, ledger entries, holds, payments and invoices stay, so totals stay exact.
CREATE TABLE org_retention (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  -- NULL: this org keeps its raw events forever, whatever the operator's default.
  raw_event_months integer CHECK (raw_event_months BETWEEN 1 AND 1200),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- How far the purge job has gone per org: no raw event before purged_before is kept (NULL: the
-- purge has not yet completed once for this org).
CREATE TABLE raw_event_purges (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  purged_before timestamptz,
  purged_events bigint NOT NULL DEFAULT 0 CHECK (purged_events >= 0),
  purged_at timestamptz NOT NULL DEFAULT now()
);

-- Rate limits that hold across processes (src/http/middleware/rateLimit.ts): each process adds
-- its requests per key and second here a few times a second and reads everyone's back. This is
-- coordination state, not data of any org: it lives in its own schema, unlogged (worthless after
-- a crash: the limiter starts over), and rows older than a minute are deleted.
CREATE SCHEMA tally_runtime;
CREATE UNLOGGED TABLE tally_runtime.rate_limit_counts (
  bucket text NOT NULL,
  second bigint NOT NULL,
  process text NOT NULL,
  requests integer NOT NULL CHECK (requests > 0),
  PRIMARY KEY (bucket, second, process)
);
CREATE UNLOGGED TABLE tally_runtime.rate_limit_processes (
  process text PRIMARY KEY,
  seen_second bigint NOT NULL
);
