-- A delivery's 24 hours of retries start at its first attempt, not at its creation: one queued
-- behind a failing delivery of its endpoint spent its window waiting, then got a single attempt.
-- NULL: not attempted yet; the worker sets it when it first takes the delivery.
ALTER TABLE webhook_deliveries ALTER COLUMN retry_until DROP NOT NULL, ALTER COLUMN retry_until DROP DEFAULT;

-- Waiting deliveries get their window when they are first sent.
UPDATE webhook_deliveries SET retry_until = NULL WHERE status = 'pending' AND attempts = 0;

-- A delivery being retried keeps at least 24 hours from its first attempt, which came when the
-- endpoint's delivery before it was done (or at its creation, when none was in the way).
UPDATE webhook_deliveries d
   SET retry_until = GREATEST(d.retry_until, interval '24 hours' + GREATEST(d.created_at, (
         SELECT max(COALESCE(p.delivered_at, p.last_attempt_at)) FROM webhook_deliveries p
          WHERE p.endpoint_id = d.endpoint_id AND p.seq < d.seq)))
 WHERE d.status = 'pending' AND d.attempts > 0;
