/**
 * What every spend decision of an org reads besides its balance (its terms and its limits), kept
 * in memory per process, so holds, increments and captures do not read them on every call. A copy
 * is only ever used after checking it under the org's balance lock: the locking statement reads
 * `tally_spend_version` (migration 0015), and a decision made on an older copy is thrown away
 * (StaleSpendTerms) and made again on a fresh one. So a changed limit binds the next decision,
 * in every process, exactly as if it had been read then.
 */
import type { Queryable } from '../../store/db.ts';
import { notFound } from '../errors.ts';
import { ORG_COLUMNS, type OrgRow } from '../orgs/shape.ts';
import {
  LIMIT_SETTINGS_COLUMNS,
  type LimitSettings,
  type LimitSettingsRow,
  toLimitSettings,
} from './scopes.ts';

export interface SpendTerms {
  org: OrgRow;
  settings: LimitSettings;
  /** `tally_spend_version` as read with the two above. */
  version: string;
}

/** A decision was made on terms that changed meanwhile; it is rolled back and made again. */
export class StaleSpendTerms extends Error {}

/** Orgs kept per process; past this the copies are dropped and reloaded as used. */
const MAX_ORGS = 10_000;
const kept = new Map<string, SpendTerms>();

export async function loadSpendTerms(q: Queryable, orgId: string): Promise<SpendTerms> {
  const [row] = await q.query<OrgRow & LimitSettingsRow & { spend_version: string }>(
    `SELECT ${ORG_COLUMNS}, tally_spend_version(id) AS spend_version, ${LIMIT_SETTINGS_COLUMNS}
       FROM orgs WHERE id = $1`,
    [orgId],
  );
  if (!row) throw notFound('Organization', 'org');
  const { spend_version, alert_threshold, allowed_limit, budgets, ...org } = row;
  return {
    org,
    settings: toLimitSettings({ alert_threshold, allowed_limit, budgets }),
    version: spend_version,
  };
}

/**
 * Runs a spend decision with the org's terms: the kept copy first, a fresh one whenever the
 * decision finds its copy stale.
 */
export async function withSpendTerms<T>(
  q: Queryable,
  orgId: string,
  decide: (terms: SpendTerms) => Promise<T>,
): Promise<T> {
  let terms = await keptSpendTerms(q, orgId);
  for (let attempt = 1; ; attempt++) {
    try {
      return await decide(terms);
    } catch (error) {
      if (!(error instanceof StaleSpendTerms) || attempt >= 5) throw error;
      terms = await reloadSpendTerms(q, orgId);
    }
  }
}

/** This process's copy of the org's terms (loaded when it has none): check it under the lock. */
export async function keptSpendTerms(q: Queryable, orgId: string): Promise<SpendTerms> {
  return kept.get(orgId) ?? (await reloadSpendTerms(q, orgId));
}

/** The org's terms read afresh, and kept from now on. */
export async function reloadSpendTerms(q: Queryable, orgId: string): Promise<SpendTerms> {
  const terms = await loadSpendTerms(q, orgId);
  if (kept.size >= MAX_ORGS) kept.clear();
  kept.set(orgId, terms);
  return terms;
}

/** Throws StaleSpendTerms unless `version` (of a kept copy) is the one read under the lock. */
export function requireCurrent(version: string, versionUnderLock: string | null): void {
  if (versionUnderLock !== version) throw new StaleSpendTerms();
}
