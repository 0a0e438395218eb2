-- Several holds of one org placed by one statement, so they share one commit (authorize.ts). Every
-- hold of an org waits for its balance row lock, and a transaction keeps that lock until its commit
-- is flushed to disk: one hold at a time, each paying a whole flush, bounds an org's holds to about
-- one per flush. Holds that queued meanwhile in a process go together instead: each is decided in
-- turn, exactly as tally_place_hold decides it alone, and seeing the ones before it.
--
-- Members first, before the balance lock (as tally_place_hold takes them), in the order ensureMembers
-- creates them for ingest (UTF-8 byte order: COLLATE "C"): creating one under the balance lock,
-- or two in another order than a concurrent batch of events, could deadlock with it. Answers come
-- with the hold's place in the list (`ordinal`).
CREATE FUNCTION tally_place_holds(p_holds jsonb)
RETURNS TABLE (ordinal bigint, outcome text, resolved_member_id text, room_units bigint, hold_units bigint)
LANGUAGE plpgsql AS $$
DECLARE
  h jsonb;
BEGIN
  INSERT INTO members (org_id, id, external_id, role)
    SELECT DISTINCT ON (x.value ->> 'org' COLLATE "C", x.value ->> 'member_external' COLLATE "C")
           x.value ->> 'org', x.value ->> 'new_member_id', x.value ->> 'member_external', 'member'
      FROM jsonb_array_elements(p_holds) AS x
     WHERE NOT EXISTS (SELECT 1 FROM members m
                        WHERE m.org_id = x.value ->> 'org' AND m.external_id = x.value ->> 'member_external')
     ORDER BY x.value ->> 'org' COLLATE "C", x.value ->> 'member_external' COLLATE "C"
    ON CONFLICT (org_id, external_id) DO NOTHING;
  FOR h, ordinal IN SELECT x.value, x.ordinality FROM jsonb_array_elements(p_holds) WITH ORDINALITY AS x
                    ORDER BY x.ordinality LOOP
    SELECT p.outcome, p.resolved_member_id, p.room_units, p.hold_units
      INTO outcome, resolved_member_id, room_units, hold_units
      FROM tally_place_hold(
        h ->> 'org', (h ->> 'now')::timestamptz, (h ->> 'plan_needed')::boolean, (h ->> 'credits')::boolean,
        (h ->> 'untracked')::boolean, h ->> 'member_external', h ->> 'new_member_id', h ->> 'expected_member_id',
        (h ->> 'estimate')::bigint, h -> 'scopes', h -> 'scope_refs', h ->> 'id', h ->> 'api_key_id',
        h ->> 'feature', h ->> 'provider', h ->> 'model', h ->> 'workspace', h ->> 'workspace_group',
        h ->> 'project', (h ->> 'expires_at')::timestamptz, h ->> 'spend_version') AS p;
    RETURN NEXT;
  END LOOP;
END
$$;
