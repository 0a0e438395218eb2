-- The org's monthly limits as they were set over time, so that a past month is compared with the
-- limit in force then (budget against actual in the monthly history). setLimits writes a row with
-- every change of org_limits, in the same transaction.
CREATE TABLE org_limit_changes (
  org_id text NOT NULL REFERENCES orgs (id),
  id bigserial,
  changed_at timestamptz NOT NULL DEFAULT now(),
  alert_threshold numeric(20, 6),
  allowed_limit numeric(20, 6),
  PRIMARY KEY (org_id, id)
);
CREATE INDEX org_limit_changes_at ON org_limit_changes (org_id, changed_at);

-- Earlier changes come from the audit log, which kept each one with its values.
INSERT INTO org_limit_changes (org_id, changed_at, alert_threshold, allowed_limit)
SELECT a.org_id, a.created_at, (a.data ->> 'alert_threshold')::numeric, (a.data ->> 'allowed_limit')::numeric
  FROM audit_log a JOIN orgs o ON o.id = a.org_id
 WHERE a.action = 'limits.set'
 ORDER BY a.org_id, a.id;
-- Limits set with no audit entry left stand from their last change.
INSERT INTO org_limit_changes (org_id, changed_at, alert_threshold, allowed_limit)
SELECT l.org_id, l.updated_at, l.alert_threshold, l.allowed_limit
  FROM org_limits l
 WHERE NOT EXISTS (SELECT FROM org_limit_changes c WHERE c.org_id = l.org_id);
