-- Raw events of one tool (the tool filter of the usage reports: no hourly rollup keys the tool),
-- on the same expression as services/usage/scope.ts toolSql. Partial: only events naming a tool
-- are indexed, so ingest pays nothing for the others.
CREATE INDEX events_tool ON events (
  org_id,
  (coalesce(CASE WHEN jsonb_typeof(metadata -> 'tool') = 'string'
                 THEN left(btrim(metadata ->> 'tool', E' \t\n\r\f' || chr(11)), 200) END, '')),
  occurred_at
) WHERE metadata ? 'tool';
