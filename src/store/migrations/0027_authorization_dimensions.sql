-- A call billed through a hold is attributed as an ingested event is: the hold takes its surface,
-- conversation, message, parent and metadata, the authorization keeps them, and the event its
-- capture, void or expiry records copies them (settle.ts, callEvent), so the rollups by surface,
-- integration and tool and the conversation pages count it. Types and defaults as on events.
ALTER TABLE authorizations
  ADD COLUMN surface text NOT NULL DEFAULT '',
  ADD COLUMN conversation_id text,
  ADD COLUMN message_id text,
  ADD COLUMN parent_id text,
  ADD COLUMN metadata jsonb;

-- tally_place_hold (migration 0015) writes them too. New parameters make another function, so the
-- old one is dropped and this one created: the same hold, decided and written exactly as before.
DROP FUNCTION tally_place_hold(text, timestamptz, boolean, boolean, boolean, text, text, text, bigint, jsonb,
  jsonb, text, text, text, text, text, text, text, text, timestamptz, text);

CREATE FUNCTION tally_place_hold(
  p_org text,
  p_now timestamptz,
  p_plan_needed boolean,
  p_credits boolean,
  p_untracked boolean,
  p_member_external text,
  p_new_member_id text,
  p_expected_member_id text,
  p_estimate bigint,
  p_scopes jsonb,
  p_scope_refs jsonb,
  p_id text,
  p_api_key_id text,
  p_feature text,
  p_provider text,
  p_model text,
  p_workspace text,
  p_workspace_group text,
  p_project text,
  p_surface text,
  p_conversation_id text,
  p_message_id text,
  p_parent_id text,
  p_metadata jsonb,
  p_expires_at timestamptz,
  p_spend_version text,
  OUT outcome text,
  OUT resolved_member_id text,
  OUT room_units bigint,
  OUT hold_units bigint
) LANGUAGE plpgsql AS $$
DECLARE
  balance record;
  scope_room bigint;
BEGIN
  -- The member before the balance lock: the order ingest takes them in.
  SELECT m.id INTO resolved_member_id FROM members m
   WHERE m.org_id = p_org AND m.external_id = p_member_external;
  IF p_expected_member_id IS NOT NULL AND resolved_member_id IS DISTINCT FROM p_expected_member_id THEN
    outcome := 'slow';
    RETURN;
  END IF;
  IF resolved_member_id IS NULL THEN
    INSERT INTO members (org_id, id, external_id, role) VALUES (p_org, p_new_member_id, p_member_external, 'member')
      ON CONFLICT (org_id, external_id) DO NOTHING
      RETURNING id INTO resolved_member_id;
    IF resolved_member_id IS NULL THEN
      SELECT m.id INTO resolved_member_id FROM members m
       WHERE m.org_id = p_org AND m.external_id = p_member_external;
    END IF;
  END IF;

  SELECT b.remaining, b.held, b.overage,
         EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.kind = 'plan'
                    AND g.effective_at <= p_now AND g.expires_at > p_now) AS plan_running,
         EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.status = 'active'
                    AND g.expires_at <= p_now) AS expiry_due
    INTO balance
    FROM org_balances b WHERE b.org_id = p_org FOR UPDATE OF b;
  IF NOT FOUND OR (p_plan_needed AND NOT balance.plan_running) OR balance.expiry_due THEN
    outcome := 'slow';
    RETURN;
  END IF;
  -- The caller's copy of the org's terms and limits is the one in force, or it must reload it.
  IF tally_spend_version(p_org) IS DISTINCT FROM p_spend_version THEN
    outcome := 'stale';
    RETURN;
  END IF;

  SELECT min(x.limit_units - COALESCE(c.spent, 0) - COALESCE(c.held, 0)) INTO scope_room
    FROM jsonb_to_recordset(p_scopes) AS x(scope text, period_start timestamptz, limit_units bigint, hard boolean)
    LEFT JOIN spend_counters c
      ON c.org_id = p_org AND c.scope = x.scope AND c.period_start = x.period_start
   WHERE x.hard AND x.limit_units IS NOT NULL;
  -- NULL: nothing limits this call.
  room_units := least(CASE WHEN p_credits THEN balance.remaining - balance.held - balance.overage END, scope_room);
  hold_units := CASE WHEN p_untracked THEN 0
                     ELSE least(p_estimate, greatest(COALESCE(room_units, p_estimate), 0)) END;
  IF NOT p_untracked AND hold_units <= 0 AND p_estimate > 0 THEN
    outcome := 'denied';
    RETURN;
  END IF;

  INSERT INTO authorizations (org_id, id, member_id, member_external_id, api_key_id, feature, provider, model,
      workspace, workspace_group, project, surface, conversation_id, message_id, parent_id, metadata, status, held,
      scopes, expires_at)
    VALUES (p_org, p_id, resolved_member_id, p_member_external, p_api_key_id, p_feature, p_provider, p_model,
      p_workspace, p_workspace_group, p_project, p_surface, p_conversation_id, p_message_id, p_parent_id, p_metadata,
      'active', hold_units, p_scope_refs, p_expires_at);
  IF hold_units > 0 THEN
    INSERT INTO spend_counters (org_id, scope, period_start, spent, held)
      SELECT p_org, x.scope, x.period_start, 0, hold_units
        FROM jsonb_to_recordset(p_scope_refs) AS x(scope text, period_start timestamptz)
       ORDER BY x.scope, x.period_start
      ON CONFLICT (org_id, scope, period_start) DO UPDATE SET held = spend_counters.held + EXCLUDED.held;
    IF p_credits THEN
      INSERT INTO ledger_entries (org_id, kind, amount, authorization_id, memo)
        VALUES (p_org, 'hold', hold_units, p_id, 'hold placed');
      UPDATE org_balances SET held = held + hold_units, updated_at = now() WHERE org_id = p_org;
    END IF;
  END IF;
  outcome := 'placed';
END
$$;

-- tally_place_holds (migration 0025) passes each hold's new fields on; otherwise unchanged. A JSON
-- null metadata is no metadata (SQL NULL), as the events table stores it.
CREATE OR REPLACE FUNCTION tally_place_holds(p_holds jsonb)
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
        h ->> 'project', h ->> 'surface', h ->> 'conversation_id', h ->> 'message_id', h ->> 'parent_id',
        NULLIF(h -> 'metadata', 'null'::jsonb), (h ->> 'expires_at')::timestamptz, h ->> 'spend_version') AS p;
    RETURN NEXT;
  END LOOP;
END
$$;
