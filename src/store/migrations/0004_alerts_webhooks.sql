-- Alerts and outbound webhooks: alerts fired at thresholds, endpoints, the outbox of messages and
-- one delivery per endpoint and message, delivered in order per endpoint by a worker.

-- Each alert fires exactly once per scope and period: the unique key makes every later attempt
-- (another event, another process) a no-op.
CREATE TABLE alerts (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  seq bigserial,
  type text NOT NULL,
  -- 'monthly_limit', 'alert_threshold', 'budget:<id>', 'plan_allowance' or 'credits'.
  scope text NOT NULL,
  period_start timestamptz NOT NULL,
  -- The percentage of the scope's amount that was reached (10 for credits.low, 0 when none applies).
  threshold_percent integer NOT NULL CHECK (threshold_percent >= 0),
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, type, scope, period_start, threshold_percent)
);
CREATE INDEX alerts_newest ON alerts (org_id, seq DESC);

-- org_id NULL: an operator-wide endpoint that receives every org's messages. The secret is kept
-- in clear (Standard Webhooks signs with it, so it cannot be a hash) and shown only on creation.
CREATE TABLE webhook_endpoints (
  id text PRIMARY KEY,
  org_id text REFERENCES orgs (id),
  url text NOT NULL,
  description text,
  secret text NOT NULL,
  -- Empty: every event type.
  event_types text[] NOT NULL DEFAULT '{}',
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id) WHERE deleted_at IS NULL;

-- The outbox: written in the same transaction as the change it reports.
CREATE TABLE webhook_messages (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  seq bigserial,
  type text NOT NULL,
  -- The body sent: {type, timestamp, data}.
  payload jsonb NOT NULL,
  -- Messages produced by jobs (daily summaries) are written once per key.
  dedupe_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, dedupe_key)
);

-- One row per endpoint and message. Per endpoint, deliveries go out in seq order: the worker only
-- takes an endpoint's oldest pending delivery, so message N+1 waits until N succeeded or failed.
CREATE TABLE webhook_deliveries (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  seq bigserial,
  endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
  message_id text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- Retries go on until this time has passed (24 hours after creation or replay), then it fails.
  retry_until timestamptz NOT NULL DEFAULT now() + interval '24 hours',
  -- A worker's lease while it sends; a worker that died loses it when it runs out.
  locked_by text,
  locked_until timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, seq DESC);
