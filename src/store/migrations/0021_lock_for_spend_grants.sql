-- tally_lock_for_spend also answers the org's active grants (as activeGrants reads them), read by
-- a statement of its own after the lock like the counters: the draw-down of an increment, a
-- capture or an ingest batch then needs no read of its own, one round trip less under the lock.
-- A new OUT column changes the function's row type, so it is dropped and created again.
DROP FUNCTION tally_lock_for_spend(text, timestamptz, jsonb, text);

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
  OUT spend_version text,
  OUT active_grants jsonb
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
  SELECT COALESCE(jsonb_agg(jsonb_build_object('id', g.id, 'kind', g.kind, 'amount', g.amount::text,
           'consumed', g.consumed::text, 'expired', g.expired::text, 'remaining', g.remaining::text,
           'status', g.status, 'effective_at', g.effective_at, 'expires_at', g.expires_at) ORDER BY g.id), '[]'::jsonb)
    INTO active_grants
    FROM grants g
   WHERE g.org_id = p_org AND g.status = 'active' AND g.effective_at <= now();
END
$$;
