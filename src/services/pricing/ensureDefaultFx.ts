import type { Db } from '../../store/db.ts';
import { bumpPriceGeneration } from './priceBook.ts';

/**
 * A first EUR rate so EUR orgs can be priced out of the box; the operator replaces it with
 * PUT /v1/fx_rates/EUR. Only written when no EUR rate exists at all.
 */
export const STARTER_EUR_RATE = '0.92';

export async function ensureDefaultFx(db: Db): Promise<void> {
  await db.transaction(async (tx) => {
    const inserted = await tx.query(
      `INSERT INTO fx_rates (currency, rate, valid_from)
       SELECT 'EUR', $1, '1970-01-01T00:00:00Z' WHERE NOT EXISTS (SELECT 1 FROM fx_rates WHERE currency = 'EUR')
       RETURNING id`,
      [STARTER_EUR_RATE],
    );
    if (inserted.length > 0) await bumpPriceGeneration(tx);
  });
}
