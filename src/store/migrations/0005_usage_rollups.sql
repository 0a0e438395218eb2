-- Narrow usage rollups, kept in the ingest transaction beside usage_hourly (which keys every
-- dimension at once and barely compresses varied traffic: about one row per event).
--
-- usage_hourly_total: the org's total per UTC hour (summaries and charts without splits).
-- usage_daily_dim:    ONE dimension per row, per day of the org's time zone at ingest time:
--                     [bucket, day_end) is that local day on whole UTC hours (a local midnight is
--                     floored to its UTC hour, as the report ranges are). Dimension 'all' (key '')
--                     is the org total; 'member', 'feature', ... one row per key of that dimension
--                     ('' = not given; 'model' keys are provider || '/' || model; 'api_key' keys
--                     the key id, '' for the operator key).
-- A report reads the days lying fully inside one of its buckets from usage_daily_dim and every
-- other hour (today so far, a rolling 24 h, hourly charts, days cut by a time-zone change) from the
-- hourly tables, so it stays exact whatever the zone did; a 30-day breakdown by member then reads
-- about 30 x members rows. Per-dimension hourly rows were measured too costly at ingest (a batch
-- spread over many hours touches nearly one row per event and dimension).
-- Rows are updated in place by every batch that adds to them: free room on each page keeps those
-- updates HOT.

CREATE TABLE usage_hourly_total (
  org_id text NOT NULL,
  bucket timestamptz NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  cost numeric(30, 12) NOT NULL,
  provider_cost_usd numeric(30, 10) NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  PRIMARY KEY (org_id, bucket)
) WITH (fillfactor = 80);

CREATE TABLE usage_daily_dim (
  org_id text NOT NULL,
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
  PRIMARY KEY (org_id, dimension, bucket, day_end, key)
) WITH (fillfactor = 80);

-- The local day of an hour of an org (the day its last instant falls in), on whole UTC hours; an
-- hour the computation would not place inside its day (a skipped midnight) is a day of its own.
CREATE FUNCTION usage_local_day(hour timestamptz, zone text, OUT day_start timestamptz, OUT day_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH d AS (
    SELECT ((hour + interval '1 hour' - interval '1 microsecond') AT TIME ZONE zone)::date AS local
  ), b AS (
    SELECT date_trunc('hour', (local::timestamp AT TIME ZONE zone) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS s,
           date_trunc('hour', ((local + 1)::timestamp AT TIME ZONE zone) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS e
      FROM d
  )
  SELECT CASE WHEN s <= hour AND hour < e THEN s ELSE hour END,
         CASE WHEN s <= hour AND hour < e THEN e ELSE hour + interval '1 hour' END
    FROM b
$$;

-- Usage recorded before this migration, from the wide rollup.
INSERT INTO usage_hourly_total (org_id, bucket, calls, credits, cost, provider_cost_usd, input_tokens,
  output_tokens, cache_read_tokens, cache_write_tokens)
SELECT org_id, bucket, sum(calls), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens),
       sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens)
  FROM usage_hourly
 GROUP BY 1, 2;

INSERT INTO usage_daily_dim (org_id, dimension, bucket, day_end, key, calls, credits, cost, provider_cost_usd,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
SELECT h.org_id, d.dimension, l.day_start, l.day_end, d.key, sum(h.calls), sum(h.credits), sum(h.cost),
       sum(h.provider_cost_usd), sum(h.input_tokens), sum(h.output_tokens), sum(h.cache_read_tokens),
       sum(h.cache_write_tokens)
  FROM usage_hourly h
  JOIN orgs o ON o.id = h.org_id
 CROSS JOIN LATERAL usage_local_day(h.bucket, o.timezone) AS l
 CROSS JOIN LATERAL (VALUES
   ('all', ''), ('member', h.member_id), ('feature', h.feature), ('model', h.provider || '/' || h.model),
   ('provider', h.provider), ('workspace', h.workspace), ('workspace_group', h.workspace_group),
   ('surface', h.surface), ('project', h.project), ('api_key', h.api_key_id)
 ) AS d (dimension, key)
 GROUP BY 1, 2, 3, 4, 5;
