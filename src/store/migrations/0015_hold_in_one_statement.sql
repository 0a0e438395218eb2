-- What a spend decision read about an org (its terms, its monthly limits, its live budgets), as
-- one text: a process that keeps them in memory compares this, read under the balance lock, with
-- the version it loaded, and reloads when they differ. Budgets never change once made (they are
-- only deleted), so their ids stand for them.
CREATE FUNCTION tally_spend_version(p_org text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('%L|%L|%L|%L|%L|%L|%L|%L|%L', o.billing_mode, o.currency, o.credit_value, o.timezone,
           o.plan_allowance_credits, o.billing_cycle_anchor, l.alert_threshold, l.allowed_limit,
           (SELECT string_agg(b.id, ',' ORDER BY b.id) FROM budgets b WHERE b.org_id = o.id AND b.deleted_at IS NULL))
    FROM orgs o LEFT JOIN org_limits l ON l.org_id = o.id
   WHERE o.id = p_org
$$;

-- A hold placed in one statement: the org's balance row is locked, judged and written inside
-- Postgres, so the lock is held for the time the server needs (a fraction of a millisecond) rather
-- than for several round trips to a busy Node process. Every hold of an org queues on that lock.
--
-- The caller computes the scopes (with their limits in units) exactly as for the full path; this
-- function only takes the smallest room among credits and the hard limits, as `headroom` does.
-- Whatever it cannot decide alone it leaves to the full path (outcome 'slow'): no balance row yet,
-- a plan grant to issue or grants to expire, a member whose id the scopes depend on and that does
-- not match, and denials (which record their quota.exceeded alert there). Outcome 'stale': the
-- org's terms or limits changed since the caller loaded them (tally_spend_version).
--
-- Each statement of a plpgsql function takes a fresh snapshot under READ COMMITTED, so the counters
-- are read after the lock is granted and see what the previous lock holder committed.
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
      workspace, workspace_group, project, status, held, scopes, expires_at)
    VALUES (p_org, p_id, resolved_member_id, p_member_external, p_api_key_id, p_feature, p_provider, p_model,
      p_workspace, p_workspace_group, p_project, 'active', hold_units, p_scope_refs, p_expires_at);
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

-- The balance lock of a spend decision in one round trip (lockForSpend): locks the org's balance
-- row (creating it on first use) and, when given, the authorization being billed, then reads the
-- counters of the given scopes in a statement of their own, so they are read after the lock, and
-- the version of the org's terms and limits in force (tally_spend_version).
-- Amounts come back as text: they are exact integers that may not fit a JavaScript number.
CREATE FUNCTION tally_lock_for_spend(
  p_org text,
  p_now timestamptz,
  p_scope_refs jsonb,
  p_authorization text,
  OUT granted text,
  OUT consumed text,
  OUT expired text,
  OUT remaining text,
  OUT held text,
  OUT overage text,
  OUT plan_running boolean,
  OUT expiry_due boolean,
  OUT counters jsonb,
  OUT authorization_state jsonb,
  OUT spend_version text
) LANGUAGE plpgsql AS $$
DECLARE
  balance record;
BEGIN
  FOR attempt IN 1..2 LOOP
    SELECT b.granted::text AS granted, b.consumed::text AS consumed, b.expired::text AS expired,
           b.remaining::text AS remaining, b.held::text AS held, b.overage::text AS overage,
           EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.kind = 'plan'
                      AND g.effective_at <= p_now AND g.expires_at > p_now) AS plan_running,
           EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.status = 'active'
                      AND g.expires_at <= p_now) AS expiry_due
      INTO balance
      FROM org_balances b WHERE b.org_id = p_org FOR UPDATE OF b;
    EXIT WHEN FOUND;
    INSERT INTO org_balances (org_id) VALUES (p_org) ON CONFLICT (org_id) DO NOTHING;
  END LOOP;
  granted := balance.granted;
  consumed := balance.consumed;
  expired := balance.expired;
  remaining := balance.remaining;
  held := balance.held;
  overage := balance.overage;
  plan_running := balance.plan_running;
  expiry_due := balance.expiry_due;
  spend_version := tally_spend_version(p_org);
  IF p_authorization IS NOT NULL THEN
    SELECT jsonb_build_object('status', a.status, 'held', a.held::text, 'charged', a.charged::text,
             'usage', a.usage, 'event_id', a.event_id, 'result', a.result, 'expires_at', a.expires_at)
      INTO authorization_state
      FROM authorizations a WHERE a.org_id = p_org AND a.id = p_authorization FOR UPDATE OF a;
  END IF;
  SELECT COALESCE(jsonb_agg(jsonb_build_object('scope', c.scope, 'period_start', c.period_start,
           'spent', c.spent::text, 'held', c.held::text)), '[]'::jsonb)
    INTO counters
    FROM spend_counters c
    JOIN jsonb_to_recordset(p_scope_refs) AS x(scope text, period_start timestamptz)
      ON c.scope = x.scope AND c.period_start = x.period_start
   WHERE c.org_id = p_org;
END
$$;
