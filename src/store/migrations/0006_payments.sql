-- Payments: credit top-ups bought through Stripe Checkout (or the local provider when Stripe is not
-- configured), their invoices numbered without gaps, and the Stripe events already processed.
-- Amounts are NUMERIC in the org currency; credits are integer micro-credits (BIGINT).

CREATE TABLE payments (
  org_id text NOT NULL REFERENCES orgs (id),
  id text NOT NULL,
  provider text NOT NULL CHECK (provider IN ('stripe', 'local')),
  amount numeric(20, 2) NOT NULL CHECK (amount > 0),
  currency text NOT NULL CHECK (currency IN ('EUR', 'USD')),
  credits bigint NOT NULL CHECK (credits > 0),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'completed', 'failed', 'refunded', 'disputed')),
  -- Stripe: the Checkout Session id (cs_...); local: an unguessable lcs_... id that is the
  -- capability to confirm the local payment.
  checkout_session_id text,
  checkout_url text,
  success_url text NOT NULL,
  cancel_url text NOT NULL,
  -- Stripe: the PaymentIntent id (pi_...); local: local_<payment id>.
  payment_reference text,
  grant_id text,
  -- Fixed when the payment completes, in the same transaction as the grant.
  invoice_number text,
  vat_rate numeric(7, 4),
  net_amount numeric(20, 2),
  vat_amount numeric(20, 2),
  seller jsonb,
  buyer jsonb,
  -- Refunds and disputes: the amount reversed so far (refunded as Stripe reports it cumulatively,
  -- disputed as the sum of distinct disputes), the credits taken back from the grant, and the
  -- credits that could not be taken back because they were already used.
  refunded_amount numeric(20, 2) NOT NULL DEFAULT 0,
  disputed_amount numeric(20, 2) NOT NULL DEFAULT 0,
  reversed_credits bigint NOT NULL DEFAULT 0 CHECK (reversed_credits >= 0),
  unrecovered_credits bigint NOT NULL DEFAULT 0 CHECK (unrecovered_credits >= 0),
  failure_reason text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  UNIQUE (org_id, checkout_session_id),
  -- One grant per payment, one payment per grant: the database refuses a second top-up.
  UNIQUE (org_id, grant_id),
  CHECK ((status IN ('completed', 'refunded', 'disputed')) = (grant_id IS NOT NULL))
);
CREATE UNIQUE INDEX payments_invoice_number ON payments (invoice_number) WHERE invoice_number IS NOT NULL;
CREATE INDEX payments_newest ON payments (org_id, created_at DESC, id DESC);
-- Refund and dispute events name the PaymentIntent only.
CREATE INDEX payments_reference ON payments (payment_reference) WHERE payment_reference IS NOT NULL;
-- The local provider's confirm page finds its payment by the session id alone.
CREATE INDEX payments_session ON payments (checkout_session_id) WHERE checkout_session_id IS NOT NULL;

-- Gapless invoice numbers per operator: the counter row is incremented in the transaction that
-- completes the payment, so a rolled-back completion gives its number back.
CREATE TABLE invoice_counters (
  series text PRIMARY KEY,
  last_number bigint NOT NULL DEFAULT 0 CHECK (last_number >= 0)
);
INSERT INTO invoice_counters (series, last_number) VALUES ('invoice', 0);

-- Stripe delivers at least once and in any order: an event id is acted on once.
CREATE TABLE processed_stripe_events (
  event_id text PRIMARY KEY,
  type text NOT NULL,
  org_id text,
  payment_id text,
  outcome text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
