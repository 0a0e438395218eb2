-- The two tables written once per usage event drop their foreign key to orgs. Postgres checked it
-- row by row (a trigger and a FOR KEY SHARE lookup of the org per row): a batch of 1 000 events
-- ran 2 000 checks of the same few orgs, about 5 ms a batch on PGlite, inside the transaction that
-- holds the org's balance lock on the server. Nothing is lost: orgs are never deleted, ingest and
-- capture read the org by id first, and every ledger writer locks or inserts, in the same
-- transaction, the org's balance row, grant or authorization, which keep their key to orgs.
ALTER TABLE events DROP CONSTRAINT events_org_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_org_id_fkey;
