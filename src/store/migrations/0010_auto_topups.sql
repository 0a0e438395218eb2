-- Automatic top-up: when an org's available credits fall below a threshold, Tally buys enough to
-- reach the target, through a saved payment method, within a monthly cap on automatic purchases.
CREATE TABLE auto_topups (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  enabled boolean NOT NULL DEFAULT false,
  threshold_credits bigint NOT NULL DEFAULT 0 CHECK (threshold_credits >= 0),
  target_credits bigint NOT NULL DEFAULT 0,
  monthly_cap numeric(20, 2) NOT NULL DEFAULT 0 CHECK (monthly_cap >= 0),
  -- The Stripe customer a checkout saved a card for (off-session charges use its card).
  stripe_customer_id text,
  disabled_reason text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (NOT enabled OR (target_credits > threshold_credits AND monthly_cap > 0))
);

-- Which payments the automatic top-up made, and which checkouts asked to save the card.
ALTER TABLE payments ADD COLUMN kind text NOT NULL DEFAULT 'checkout' CHECK (kind IN ('checkout', 'auto_topup'));
ALTER TABLE payments ADD COLUMN save_payment_method boolean NOT NULL DEFAULT false;
CREATE INDEX payments_auto_pending ON payments (created_at) WHERE kind = 'auto_topup' AND status = 'pending';
-- At most one automatic purchase in flight per org.
CREATE UNIQUE INDEX payments_one_auto_pending ON payments (org_id) WHERE kind = 'auto_topup' AND status = 'pending';
