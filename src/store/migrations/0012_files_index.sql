-- Calls that name the files they used (metadata.files): the files view of the usage API reads
-- only these rows of its range. Ingest touches this index only for such calls.
CREATE INDEX events_with_files ON events (org_id, occurred_at) WHERE metadata ? 'files';
