-- Credits ledger: grants, append-only entries, kept balances, holds, limits and budgets.
-- All credit amounts are integer micro-credits (BIGINT). For BYOM orgs the unit is micro-USD.

CREATE TABLE grants (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('plan', 'bonus', 'topup', 'promo', 'adjustment')),
  source text NOT NULL CHECK (source IN ('payment', 'referral', 'operator', 'plan', 'promotion', 'rollover')),
  amount bigint NOT NULL CHECK (amount > 0),
  consumed bigint NOT NULL DEFAULT 0 CHECK (consumed >= 0),
  expired bigint NOT NULL DEFAULT 0 CHECK (expired >= 0),
  remaining bigint NOT NULL CHECK (remaining >= 0),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'voided')),
  effective_at timestamptz NOT NULL,
  expires_at timestamptz,
  cycle_start timestamptz,
  reason text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  -- The ledger invariant, per grant, enforced by the database itself.
  CHECK (amount - consumed - expired = remaining)
);
CREATE UNIQUE INDEX grants_one_plan_per_cycle ON grants (org_id, cycle_start) WHERE kind = 'plan';
CREATE INDEX grants_active ON grants (org_id) WHERE status = 'active';
CREATE INDEX grants_expiring ON grants (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;

CREATE TABLE ledger_entries (
  org_id text NOT NULL REFERENCES orgs (id),
  id bigserial,
  kind text NOT NULL CHECK (kind IN ('grant', 'debit', 'overage', 'settlement', 'expiry', 'void', 'hold', 'hold_release')),
  grant_id text,
  amount bigint NOT NULL,
  event_id text,
  authorization_id text,
  memo text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id)
);
CREATE INDEX ledger_entries_grant ON ledger_entries (org_id, grant_id) WHERE grant_id IS NOT NULL;

-- Kept for speed; `tally check` re-derives every column from ledger_entries.
CREATE TABLE org_balances (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  granted bigint NOT NULL DEFAULT 0,
  consumed bigint NOT NULL DEFAULT 0,
  expired bigint NOT NULL DEFAULT 0,
  remaining bigint NOT NULL DEFAULT 0,
  held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
  overage bigint NOT NULL DEFAULT 0 CHECK (overage >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (granted - consumed - expired = remaining)
);

CREATE TABLE org_limits (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  alert_threshold numeric(20, 6),
  allowed_limit numeric(20, 6),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (alert_threshold IS NULL OR allowed_limit IS NULL OR alert_threshold <= allowed_limit)
);

CREATE TABLE budgets (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  name text NOT NULL,
  scope_kind text NOT NULL CHECK (scope_kind IN ('member', 'workspace', 'workspace_group', 'project', 'api_key')),
  scope_id text NOT NULL,
  period text NOT NULL CHECK (period IN ('month', 'cycle')),
  amount numeric(20, 6) NOT NULL CHECK (amount >= 0),
  enforcement text NOT NULL CHECK (enforcement IN ('hard', 'soft')),
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  PRIMARY KEY (org_id, id)
);

-- Spend and holds per limited scope and period, in the org's credit unit. Holds are checked
-- against these with guarded updates, so spend plus holds never passes a hard limit.
CREATE TABLE spend_counters (
  org_id text NOT NULL REFERENCES orgs (id),
  scope text NOT NULL,
  period_start timestamptz NOT NULL,
  spent bigint NOT NULL DEFAULT 0,
  -- No CHECK here: an upsert's insert row carries the (negative) delta of a release.
  held bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (org_id, scope, period_start)
);

CREATE TABLE authorizations (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  member_id text NOT NULL,
  member_external_id text NOT NULL,
  api_key_id text,
  feature text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  workspace text NOT NULL DEFAULT '',
  workspace_group text NOT NULL DEFAULT '',
  project text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('active', 'captured', 'voided', 'expired')),
  held bigint NOT NULL CHECK (held >= 0),
  charged bigint NOT NULL DEFAULT 0,
  usage jsonb NOT NULL DEFAULT '{}',
  scopes jsonb NOT NULL,
  event_id text,
  result jsonb,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX authorizations_expiring ON authorizations (expires_at) WHERE status = 'active';
