-- Unused plan credits may roll over into the next cycle, up to this many micro-credits (0: none).
-- When a cycle's plan grant expires with credits left, a `bonus` grant of source `rollover` carries
-- the smaller of the two into the cycle that follows, expiring at that cycle's end.
ALTER TABLE orgs ADD COLUMN plan_rollover_max_credits bigint NOT NULL DEFAULT 0
  CHECK (plan_rollover_max_credits >= 0);
