/**
 * Re-derives every kept balance from the append-only entries and reports each difference.
 * Invariant checked: granted - consumed - expired = remaining, per grant and per org; and what
 * each hold still reserves, per authorization, adds up to the org's held credits; and what each
 * call billed through an authorization was charged equals its draw-down and overage entries.
 */
import type { Queryable } from '../../store/db.ts';

export interface LedgerDifference {
  org_id: string;
  grant_id: string | null;
  field: string;
  kept: string;
  derived: string;
}

export async function checkLedger(q: Queryable, orgId?: string): Promise<LedgerDifference[]> {
  const grants = await q.query<LedgerDifference>(
    `WITH derived AS (
       SELECT org_id, grant_id,
              sum(amount) FILTER (WHERE kind = 'grant') AS amount,
              -sum(amount) FILTER (WHERE kind IN ('debit', 'settlement')) AS consumed,
              -sum(amount) FILTER (WHERE kind IN ('expiry', 'void')) AS expired,
              sum(amount) FILTER (WHERE kind IN ('grant', 'debit', 'settlement', 'expiry', 'void')) AS remaining
         FROM ledger_entries WHERE grant_id IS NOT NULL AND ($1::text IS NULL OR org_id = $1)
        GROUP BY org_id, grant_id)
     SELECT g.org_id, g.id AS grant_id, f.field, f.kept::text, f.derived::text
       FROM grants g LEFT JOIN derived d ON d.org_id = g.org_id AND d.grant_id = g.id
       CROSS JOIN LATERAL (VALUES ('amount', g.amount, COALESCE(d.amount, 0)),
                                  ('consumed', g.consumed, COALESCE(d.consumed, 0)),
                                  ('expired', g.expired, COALESCE(d.expired, 0)),
                                  ('remaining', g.remaining, COALESCE(d.remaining, 0))) AS f(field, kept, derived)
      WHERE ($1::text IS NULL OR g.org_id = $1) AND f.kept <> f.derived`,
    [orgId ?? null],
  );
  const orgs = await q.query<LedgerDifference>(
    `WITH derived AS (
       SELECT org_id,
              COALESCE(sum(amount) FILTER (WHERE kind = 'grant'), 0) AS granted,
              COALESCE(-sum(amount) FILTER (WHERE kind IN ('debit', 'settlement')), 0) AS consumed,
              COALESCE(-sum(amount) FILTER (WHERE kind IN ('expiry', 'void')), 0) AS expired,
              COALESCE(sum(amount) FILTER (WHERE kind IN ('hold', 'hold_release')), 0) AS held,
              COALESCE(-sum(amount) FILTER (WHERE kind = 'overage'), 0)
                + COALESCE(sum(amount) FILTER (WHERE kind = 'settlement'), 0) AS overage
         FROM ledger_entries WHERE ($1::text IS NULL OR org_id = $1) GROUP BY org_id)
     SELECT b.org_id, NULL AS grant_id, f.field, f.kept::text, f.derived::text
       FROM org_balances b LEFT JOIN derived d ON d.org_id = b.org_id
       CROSS JOIN LATERAL (VALUES ('granted', b.granted, COALESCE(d.granted, 0)),
                                  ('consumed', b.consumed, COALESCE(d.consumed, 0)),
                                  ('expired', b.expired, COALESCE(d.expired, 0)),
                                  ('remaining', b.remaining, COALESCE(d.granted - d.consumed - d.expired, 0)),
                                  ('held', b.held, COALESCE(d.held, 0)),
                                  ('overage', b.overage, COALESCE(d.overage, 0))) AS f(field, kept, derived)
      WHERE ($1::text IS NULL OR b.org_id = $1) AND f.kept <> f.derived`,
    [orgId ?? null],
  );
  // Per authorization (credits orgs: the only ones whose holds reserve credits), in one pass over
  // its entries: what its hold still reserves (hold and release entries) and what the call was
  // charged (its draw-down and overage entries).
  const calls = await q.query<LedgerDifference>(
    `WITH derived AS (
       SELECT org_id, authorization_id,
              COALESCE(sum(amount) FILTER (WHERE kind IN ('hold', 'hold_release')), 0) AS held,
              COALESCE(-sum(amount) FILTER (WHERE kind IN ('debit', 'overage')), 0) AS charged
         FROM ledger_entries
        WHERE authorization_id IS NOT NULL AND ($1::text IS NULL OR org_id = $1)
        GROUP BY org_id, authorization_id)
     SELECT a.org_id, NULL AS grant_id, f.field || ' by ' || a.id AS field, f.kept::text, f.derived::text
       FROM authorizations a
       JOIN orgs o ON o.id = a.org_id AND o.billing_mode = 'credits'
       LEFT JOIN derived d ON d.org_id = a.org_id AND d.authorization_id = a.id
       CROSS JOIN LATERAL (VALUES ('held', a.held, COALESCE(d.held, 0)),
                                  ('charged', a.charged, COALESCE(d.charged, 0))) AS f(field, kept, derived)
      WHERE ($1::text IS NULL OR a.org_id = $1) AND f.kept <> f.derived`,
    [orgId ?? null],
  );
  return [...grants, ...orgs, ...calls];
}
