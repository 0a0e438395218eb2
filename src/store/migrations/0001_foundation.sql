-- Foundation: operator settings, orgs and people, keys, price catalog, sell prices, events, rollups.
-- Every table holding tenant data carries org_id and leads its keys with it (Citus-ready).

CREATE TABLE operator_settings (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operator_keys (
  id text PRIMARY KEY,
  key_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE TABLE orgs (
  id text PRIMARY KEY,
  external_id text UNIQUE,
  name text NOT NULL,
  currency text NOT NULL CHECK (currency IN ('EUR', 'USD')),
  timezone text NOT NULL,
  billing_mode text NOT NULL CHECK (billing_mode IN ('credits', 'byom', 'byok')),
  credit_value numeric(20, 6) NOT NULL CHECK (credit_value > 0),
  plan_allowance_credits bigint NOT NULL CHECK (plan_allowance_credits >= 0),
  billing_cycle_anchor date NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  external_id text,
  name text,
  email text,
  role text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  removed_at timestamptz,
  erased_at timestamptz,
  PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX members_external_id ON members (org_id, external_id);

CREATE TABLE workspaces (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  external_id text NOT NULL,
  name text NOT NULL,
  workspace_group text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, external_id)
);

CREATE TABLE api_keys (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  name text NOT NULL,
  role text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  key_hint text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  PRIMARY KEY (org_id, id)
);

CREATE TABLE audit_log (
  org_id text NOT NULL,
  id bigserial,
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  data jsonb NOT NULL DEFAULT '{}',
  request_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id)
);

-- Responses remembered for Idempotency-Key replays, per authenticated principal.
CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status integer,
  response jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, key)
);

-- Provider list prices (USD). Rows are never updated: a new price is a new row with a later
-- valid_from, so an event keeps the price row it was charged at.
CREATE TABLE catalog_versions (
  id serial PRIMARY KEY,
  source text NOT NULL,
  version text NOT NULL,
  models integer NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source, version)
);

CREATE TABLE provider_prices (
  id bigserial PRIMARY KEY,
  catalog_version_id integer REFERENCES catalog_versions (id),
  origin text NOT NULL CHECK (origin IN ('catalog', 'operator')),
  provider text NOT NULL,
  model text NOT NULL,
  name text,
  match jsonb,
  valid_from timestamptz NOT NULL,
  time_of_day jsonb,
  prices jsonb NOT NULL,
  context_window integer,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_prices_model ON provider_prices (provider, model);

-- Units of the currency per 1 USD, set by the operator.
CREATE TABLE fx_rates (
  id serial PRIMARY KEY,
  currency text NOT NULL,
  rate numeric(20, 10) NOT NULL CHECK (rate > 0),
  valid_from timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Explicit sell prices; org_id NULL is the operator-wide list, otherwise one org's own price.
CREATE TABLE sell_prices (
  id bigserial PRIMARY KEY,
  org_id text REFERENCES orgs (id),
  provider text NOT NULL,
  model text NOT NULL,
  component text NOT NULL,
  price numeric(30, 12) NOT NULL CHECK (price >= 0),
  unit text NOT NULL,
  currency text NOT NULL,
  valid_from timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sell_prices_lookup ON sell_prices (provider, model, org_id);

CREATE TABLE events (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  seq bigserial,
  member_id text,
  api_key_id text,
  feature text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  surface text NOT NULL DEFAULT '',
  workspace text NOT NULL DEFAULT '',
  workspace_group text NOT NULL DEFAULT '',
  project text NOT NULL DEFAULT '',
  conversation_id text,
  message_id text,
  parent_id text,
  occurred_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  input_tokens bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  cache_read_tokens bigint NOT NULL DEFAULT 0,
  cache_write_tokens bigint NOT NULL DEFAULT 0,
  usage jsonb NOT NULL,
  credits bigint NOT NULL,
  cost numeric(30, 12) NOT NULL,
  currency text NOT NULL,
  provider_cost_usd numeric(30, 10) NOT NULL,
  components jsonb NOT NULL,
  provider_price_id bigint,
  pricing jsonb NOT NULL,
  content_hash text NOT NULL,
  metadata jsonb,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX events_log ON events (org_id, occurred_at DESC, seq DESC);
CREATE INDEX events_conversation ON events (org_id, conversation_id) WHERE conversation_id IS NOT NULL;

-- Hourly rollup kept in the ingest transaction; '' stands for "not given" so the key is unique.
CREATE TABLE usage_hourly (
  org_id text NOT NULL,
  bucket timestamptz NOT NULL,
  member_id text NOT NULL,
  feature text NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  surface text NOT NULL,
  workspace text NOT NULL,
  workspace_group text NOT NULL,
  project text NOT NULL,
  api_key_id text NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  cost numeric(30, 12) NOT NULL,
  provider_cost_usd numeric(30, 10) NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  PRIMARY KEY (org_id, bucket, member_id, feature, provider, model, surface, workspace, workspace_group, project, api_key_id)
);
