/**
 * How long raw events are kept: an operator-wide default (operator_settings, absent = forever) and
 * an org's own choice (org_retention, where NULL months = forever for that org). The purge job
 * (purgeExpiredEvents.ts) deletes older raw events; rollups and the books are never touched.
 *
 * An org key with `org:update` may shorten its own retention below the operator's default, never
 * lengthen it past that default: keeping data longer is the operator's call (storage, contracts).
 */
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, requireOperator, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';

const DEFAULT_KEY = 'raw_event_retention_months';
/** Retention is counted in whole months of the org's time zone, between 1 and 100 years. */
export const MAX_RETENTION_MONTHS = 1200;

export async function readDefaultRetention(q: Queryable): Promise<number | null> {
  const [row] = await q.query<{ value: string }>('SELECT value FROM operator_settings WHERE key = $1', [
    DEFAULT_KEY,
  ]);
  return row ? Number(row.value) : null;
}

export async function getDefaultRetention(ctx: Ctx) {
  requireOperator(ctx);
  return { object: 'retention_settings' as const, raw_event_months: await readDefaultRetention(ctx.db) };
}

export async function setDefaultRetention(ctx: Ctx, months: number | null) {
  requireOperator(ctx);
  await ctx.db.transaction(async (tx) => {
    if (months === null) {
      await tx.query('DELETE FROM operator_settings WHERE key = $1', [DEFAULT_KEY]);
    } else {
      await tx.query(
        `INSERT INTO operator_settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
        [DEFAULT_KEY, String(months)],
      );
    }
    await audit(tx, ctx, 'operator', 'retention.default_set', null, { raw_event_months: months });
  });
  return { object: 'retention_settings' as const, raw_event_months: months };
}

export interface OrgRetentionView {
  object: 'retention';
  org_id: string;
  /** The months in force (null: raw events are kept forever). */
  raw_event_months: number | null;
  /** Whether the org chose them itself or follows the operator's default. */
  source: 'org' | 'operator_default';
  /** Raw events before this instant have been purged (null: none so far). */
  purged_before: string | null;
}

export async function readOrgRetention(q: Queryable, orgId: string): Promise<OrgRetentionView> {
  const [row] = await q.query<{ own: boolean; months: number | null; purged_before: Date | null }>(
    `SELECT r.org_id IS NOT NULL AS own, r.raw_event_months AS months, p.purged_before
       FROM orgs o
       LEFT JOIN org_retention r ON r.org_id = o.id
       LEFT JOIN raw_event_purges p ON p.org_id = o.id
      WHERE o.id = $1`,
    [orgId],
  );
  return {
    object: 'retention',
    org_id: orgId,
    raw_event_months: row?.own ? row.months : await readDefaultRetention(q),
    source: row?.own ? 'org' : 'operator_default',
    purged_before: row?.purged_before ? new Date(row.purged_before).toISOString() : null,
  };
}

export async function getOrgRetention(ctx: Ctx, orgId: string): Promise<OrgRetentionView> {
  await loadOrg(ctx.db, scopeOrg(ctx, orgId, 'org:read'));
  return readOrgRetention(ctx.db, orgId);
}

/** Sets the org's own retention (null: keep forever); `inherit` returns it to the operator's default. */
export async function setOrgRetention(
  ctx: Ctx,
  orgId: string,
  choice: { raw_event_months: number | null } | 'inherit',
): Promise<OrgRetentionView> {
  scopeOrg(ctx, orgId, 'org:update');
  return ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    if (choice !== 'inherit' && ctx.principal.kind !== 'operator') {
      const ceiling = await readDefaultRetention(tx);
      const months = choice.raw_event_months;
      if (ceiling !== null && (months === null || months > ceiling)) {
        throw new ServiceError(
          403,
          'forbidden',
          `Only the operator may keep raw events longer than the default of ${ceiling} months`,
          'raw_event_months',
        );
      }
    }
    if (choice === 'inherit') {
      await tx.query('DELETE FROM org_retention WHERE org_id = $1', [orgId]);
    } else {
      await tx.query(
        `INSERT INTO org_retention (org_id, raw_event_months) VALUES ($1, $2)
         ON CONFLICT (org_id) DO UPDATE SET raw_event_months = EXCLUDED.raw_event_months, updated_at = now()`,
        [orgId, choice.raw_event_months],
      );
    }
    await audit(tx, ctx, orgId, 'retention.set', orgId, {
      raw_event_months: choice === 'inherit' ? 'operator_default' : choice.raw_event_months,
    });
    return readOrgRetention(tx, orgId);
  });
}
