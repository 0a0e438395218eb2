-- A call's usage event is written by the statement that bills its authorization, which may carry
-- the transaction's COMMIT with it. An event id recorded before must therefore fail that statement
-- itself: SQLSTATE TL409, which Tally answers as a 409 naming `event_id`.
CREATE FUNCTION tally_require_recorded(recorded bigint, event_id text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  IF recorded = 0 THEN
    RAISE EXCEPTION 'An event with id "%" was recorded before', event_id USING ERRCODE = 'TL409';
  END IF;
  RETURN recorded;
END
$$;
