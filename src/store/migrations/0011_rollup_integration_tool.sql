-- Two more dimensions of the narrow daily rollup (usage_daily_dim), kept by ingest from now on:
--   'integration': the event's surface when it is not a built-in one (web, cli, api, mobile), e.g.
--                  'slack'; events with a built-in or no surface have no row.
--   'tool':        the string metadata.tool, trimmed of ASCII whitespace and cut to 200 characters;
--                  events without one (or with an empty one) have no row.
-- Unlike the other dimensions their rows do not add up to the 'all' total.
-- Events stored before this migration, on the same local days as 0005 (the org's zone today).
INSERT INTO usage_daily_dim (org_id, dimension, bucket, day_end, key, calls, credits, cost, provider_cost_usd,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
SELECT e.org_id, d.dimension, l.day_start, l.day_end, d.key, count(*), sum(e.credits), sum(e.cost),
       sum(e.provider_cost_usd), sum(e.input_tokens), sum(e.output_tokens), sum(e.cache_read_tokens),
       sum(e.cache_write_tokens)
  FROM events e
  JOIN orgs o ON o.id = e.org_id
 CROSS JOIN LATERAL usage_local_day(date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                    o.timezone) AS l
 CROSS JOIN LATERAL (VALUES
   ('integration', CASE WHEN e.surface NOT IN ('', 'web', 'cli', 'api', 'mobile') THEN e.surface END),
   ('tool', CASE WHEN jsonb_typeof(e.metadata -> 'tool') = 'string'
                 THEN nullif(left(btrim(e.metadata ->> 'tool', E' \t\n\r\f' || chr(11)), 200), '') END)
 ) AS d (dimension, key)
 WHERE d.key IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5;
