-- Narrow usage rollups, kept in the ingest transaction beside usage_hourly (which keys every
-- dimension at once and barely compresses varied traffic). Each row sums ONE dimension:
--   dimension 'all' (key '')            the org's total, for summaries and unsplit charts;
--   dimension 'member', 'feature', ...  one row per key of that dimension ('' = not given;
--                                       'model' keys are provider || '/' || model; 'api_key' keys
--                                       are the key id, '' for the operator key).
-- usage_hourly_dim holds UTC hours, usage_daily_dim whole UTC days (bucket = UTC midnight). A report
-- over [start, end) on whole UTC hours reads the UTC days lying fully inside it from the daily table
-- and the hours left at either edge from the hourly one, so it stays exact in every time zone.
-- A breakdown by one dimension reads at most (days + edge hours) x keys rows.

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

CREATE TABLE usage_daily_dim (
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

-- Usage recorded before this migration, from the wide rollup.
INSERT INTO usage_hourly_dim (org_id, dimension, bucket, key, calls, credits, cost, provider_cost_usd,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
SELECT h.org_id, d.dimension, h.bucket, d.key, sum(h.calls), sum(h.credits), sum(h.cost),
       sum(h.provider_cost_usd), sum(h.input_tokens), sum(h.output_tokens), sum(h.cache_read_tokens),
       sum(h.cache_write_tokens)
  FROM usage_hourly h
 CROSS JOIN LATERAL (VALUES
   ('all', ''), ('member', h.member_id), ('feature', h.feature), ('model', h.provider || '/' || h.model),
   ('provider', h.provider), ('workspace', h.workspace), ('workspace_group', h.workspace_group),
   ('surface', h.surface), ('project', h.project), ('api_key', h.api_key_id)
 ) AS d (dimension, key)
 GROUP BY 1, 2, 3, 4;

INSERT INTO usage_daily_dim (org_id, dimension, bucket, key, calls, credits, cost, provider_cost_usd,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
SELECT org_id, dimension, date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key, sum(calls),
       sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens), sum(output_tokens),
       sum(cache_read_tokens), sum(cache_write_tokens)
  FROM usage_hourly_dim
 GROUP BY 1, 2, 3, 4;
