-- A stored answer is kept for a day and read back at most a few times, but every one is written:
-- an ingest batch's answer is about 130 kB, and compressing it on write (TOAST's pglz) cost more
-- than the rest of its UPDATE. Stored out of line as it is.
ALTER TABLE idempotency_keys ALTER COLUMN response SET STORAGE EXTERNAL;
