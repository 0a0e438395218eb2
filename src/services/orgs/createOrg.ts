import { dateIn } from '../../domain/calendar.ts';
import { newId } from '../../domain/ids.ts';
import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { ORG_COLUMNS, type OrgRow, type OrgView, orgView } from './shape.ts';

export interface CreateOrgInput {
  name: string;
  currency: 'EUR' | 'USD';
  timezone: string;
  billing_mode?: 'credits' | 'byom' | 'byok';
  external_id?: string | null;
  credit_value?: string;
  plan_allowance_credits?: string;
  plan_rollover_max_credits?: string;
  billing_cycle_anchor?: string;
  activity_shows_model?: boolean;
  free_tier?: boolean;
}

/** Defaults a new org gets: 1 credit = 0.01 of its currency, the free tier's 500 credits a month. */
export const ORG_DEFAULTS = {
  credit_value: '0.01',
  plan_allowance_credits: '500',
  billing_mode: 'credits',
} as const;

export async function createOrg(ctx: Ctx, input: CreateOrgInput): Promise<OrgView> {
  requireOperator(ctx);
  const id = newId('org');
  return ctx.db.transaction(async (tx) => {
    if (input.external_id) {
      const taken = await tx.query('SELECT 1 FROM orgs WHERE external_id = $1', [input.external_id]);
      if (taken.length > 0) {
        throw new ServiceError(
          409,
          'conflict',
          'An organization with this external_id exists',
          'external_id',
        );
      }
    }
    const [row] = await tx.query<OrgRow>(
      `INSERT INTO orgs (id, external_id, name, currency, timezone, billing_mode, credit_value,
                         plan_allowance_credits, billing_cycle_anchor, plan_rollover_max_credits,
                         activity_shows_model, free_tier)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${ORG_COLUMNS}`,
      [
        id,
        input.external_id ?? null,
        input.name,
        input.currency,
        input.timezone,
        input.billing_mode ?? ORG_DEFAULTS.billing_mode,
        input.credit_value ?? ORG_DEFAULTS.credit_value,
        parseUnits(
          input.plan_allowance_credits ?? ORG_DEFAULTS.plan_allowance_credits,
          CREDIT_SCALE,
        ).toString(),
        input.billing_cycle_anchor ?? `${dateIn(input.timezone, new Date()).slice(0, 8)}01`,
        parseUnits(input.plan_rollover_max_credits ?? '0', CREDIT_SCALE).toString(),
        input.activity_shows_model ?? true,
        // The default allowance is the free tier's: an org given no plan of its own is on it.
        input.free_tier ?? input.plan_allowance_credits === undefined,
      ],
    );
    await audit(tx, ctx, id, 'org.created', id, { name: input.name });
    return orgView(row!);
  });
}
