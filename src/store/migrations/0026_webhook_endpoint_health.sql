-- Endpoint health. The delivery worker disables an endpoint whose every attempt has failed for
-- TALLY_WEBHOOK_DISABLE_AFTER_DAYS since its last success; its owner may disable and enable it too
-- (PATCH). A disabled endpoint still gets a delivery for each new message, which waits until it is
-- enabled again.
ALTER TABLE webhook_endpoints
  -- The first failed attempt since the endpoint's last success (or since it was enabled or its url
  -- changed); NULL while its last attempt succeeded.
  ADD COLUMN failing_since timestamptz,
  ADD COLUMN disabled_at timestamptz,
  -- 'failing': by the delivery worker; 'manual': by its owner.
  ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('failing', 'manual'));

-- Nothing set `disabled` before: a row switched off by hand in SQL counts as disabled by its owner.
UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'manual' WHERE disabled;

ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_disabled_when
  CHECK ((disabled_at IS NOT NULL) = disabled AND (disabled_reason IS NOT NULL) = disabled);

-- A disabled endpoint's pending deliveries wait with next_attempt_at 'infinity', so the worker's
-- scan of due deliveries (webhook_deliveries_due) never walks through them; enabling the endpoint
-- makes them due now.
UPDATE webhook_deliveries d SET next_attempt_at = 'infinity'
  FROM webhook_endpoints e
 WHERE e.id = d.endpoint_id AND e.disabled AND d.status = 'pending';
