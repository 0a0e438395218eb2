-- Calls that failed (metadata.error, see services/usage/scope.ts failedSql): the usage breakdowns
-- count them per group for their error rates. Partial: only events carrying an error key are
-- indexed, so ingest pays nothing for the others.
CREATE INDEX events_failed ON events (org_id, occurred_at) WHERE metadata ? 'error';
