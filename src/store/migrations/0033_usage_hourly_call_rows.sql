-- The wide hourly rollup keeps the calls billed through authorizations (captures, and holds voided
-- or expired after streaming) in rows of their own, apart from those of ingest batches. A batch
-- writes its rows with its events, before it takes its orgs' balance locks; a call writes its row
-- under its org's balance lock. Were the rows shared, a batch holding one while it waits for the
-- lock and a call holding the lock while it waits for that row would deadlock. Readers sum rows,
-- so two rows of one key add up as one did.
ALTER TABLE usage_hourly ADD COLUMN from_calls boolean NOT NULL DEFAULT false;
ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey;
ALTER TABLE usage_hourly ADD PRIMARY KEY
  (org_id, bucket, member_id, feature, provider, model, surface, workspace, workspace_group, project, api_key_id,
   from_calls);
