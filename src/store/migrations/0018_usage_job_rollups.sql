-- Rollups written by a job (build_usage_rollups) for busy closed periods, never at ingest, each
-- period with a marker saying how many events its rows hold: a report uses them only while the
-- ingest-kept total of the period still counts that many (a late event sends the period back to
-- the rows ingest keeps until the job rebuilds it).
--
-- Busy days rolled up by pairs of dimensions, for reports filtered on one dimension and grouped by
-- another (one tool's usage by member, one feature's by model). Without them such a report reads
-- the wide hourly rollup, or raw events for the tool, about one row per event in varied traffic.
--
-- usage_daily_pair: per org-local day (the exact [bucket, day_end) of a usage_daily_dim day), one
--                   row per (filter dimension, its key, grouped dimension, its key), keys as the
--                   wide rows of reports key them ('' = not given, 'model' = provider || '/' || model).
--                   Every dimension but 'model' as filter (a model filter matches two spellings),
--                   every other dimension as the grouped one.
-- usage_pair_days:  which days have pair rows: `calls` counts the events they were built from,
--                   `day_calls` the day's usage_daily_dim 'all' row at that moment (same snapshot).
--                   A report uses a day's pair rows only while its 'all' row still counts `calls`:
--                   a late event makes the day read hourly again until the job rebuilds it.
-- Quiet days are left to the wide rollup (few rows), so pairs never outnumber the events they
-- stand for by much.
CREATE TABLE usage_daily_pair (
  org_id text NOT NULL,
  filter_dim text NOT NULL,
  filter_key text NOT NULL,
  dimension text NOT NULL,
  bucket timestamptz NOT NULL,
  day_end timestamptz NOT NULL,
  key text NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  cost numeric(30, 12) NOT NULL,
  provider_cost_usd numeric(30, 10) NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  CHECK (day_end > bucket),
  PRIMARY KEY (org_id, filter_dim, filter_key, dimension, bucket, day_end, key)
);

CREATE TABLE usage_pair_days (
  org_id text NOT NULL,
  bucket timestamptz NOT NULL,
  day_end timestamptz NOT NULL,
  calls bigint NOT NULL,
  day_calls bigint NOT NULL,
  built_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, bucket, day_end)
);

-- Busy hours by one dimension at a time (the hourly counterpart of usage_daily_dim, which keeps
-- whole days only): hourly charts and the hours of a range no whole day covers read a few rows per
-- key instead of every wide row. Keys as in usage_daily_pair ('' = not given, also for 'tool' and
-- 'integration'). usage_hour_dims marks the built hours: `calls` as counted from raw events,
-- `hour_calls` the hour's usage_hourly_total row at that moment; used while that row counts `calls`.
CREATE TABLE usage_hourly_dim (
  org_id text NOT NULL,
  dimension text NOT NULL,
  bucket timestamptz NOT NULL,
  key text NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  cost numeric(30, 12) NOT NULL,
  provider_cost_usd numeric(30, 10) NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  PRIMARY KEY (org_id, dimension, bucket, key)
);

CREATE TABLE usage_hour_dims (
  org_id text NOT NULL,
  bucket timestamptz NOT NULL,
  calls bigint NOT NULL,
  hour_calls bigint NOT NULL,
  built_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, bucket)
);

-- The itemized lines of a busy day (the daily detail page: category, operation and priced
-- component), built with its pair rows and marked by the same usage_pair_days row. Sums are kept
-- unrounded; `valued_cost` is the cost of lines whose events carried their credit value, and
-- `unvalued_credits` the credits of those that did not, priced at the org's credit value on read.
CREATE TABLE usage_daily_items (
  org_id text NOT NULL,
  bucket timestamptz NOT NULL,
  day_end timestamptz NOT NULL,
  category text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  component text NOT NULL,
  quantity numeric NOT NULL,
  calls bigint NOT NULL,
  credits numeric NOT NULL,
  valued_cost numeric,
  unvalued_credits numeric,
  provider_cost_usd numeric,
  PRIMARY KEY (org_id, bucket, day_end, category, provider, model, component)
);
