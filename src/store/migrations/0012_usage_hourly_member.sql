-- One member's usage (the member filter of every usage report, the most used one) under another
-- dimension reads the wide hourly rollup; without this index that is every row of the org in the
-- range (about one per event), with it only the member's rows. Ingest updates rows in place (HOT:
-- no indexed column changes), so only new rollup rows pay for it.
CREATE INDEX usage_hourly_member ON usage_hourly (org_id, member_id, bucket);
