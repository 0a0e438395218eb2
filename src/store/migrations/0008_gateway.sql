-- The metering gateway: virtual keys (a secret that stands for an org, a member and a feature, so a
-- model client needs no code change to be attributed) and each org's own upstream settings (BYOK).

CREATE TABLE gateway_keys (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  name text NOT NULL,
  -- SHA-256 of the secret (tally_vk_...); the secret itself is shown once, at creation.
  key_hash text NOT NULL UNIQUE,
  key_hint text NOT NULL,
  -- Default attribution; the tally-member, tally-feature, tally-workspace and tally-project
  -- request headers override it per call.
  member text NOT NULL,
  feature text NOT NULL,
  workspace text,
  project text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (org_id, id)
);
CREATE INDEX gateway_keys_newest ON gateway_keys (org_id, created_at DESC, id DESC);

-- An org's own provider account for gateway calls. The key is AES-256-GCM encrypted under
-- TALLY_SECRET_KEY and never answered in full (the last four characters only).
CREATE TABLE gateway_upstreams (
  org_id text NOT NULL REFERENCES orgs (id),
  provider text NOT NULL CHECK (provider IN ('openai', 'anthropic')),
  base_url text,
  api_key_encrypted text NOT NULL,
  key_hint text NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, provider)
);
