import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { finishAuthorization } from './finishAuthorization.ts';

/**
 * Ends holds past their TTL: the rest of the hold is released, streamed usage stays billed. A hold
 * that cannot end is skipped, and named in the error the run ends with: the oldest due hold comes
 * first on every run, so stopping at it would keep every other org's due holds held.
 */
export async function expireHolds(ctx: Ctx, batch = 500): Promise<{ expired: number }> {
  const due = await ctx.db.query<{ id: string }>(
    `SELECT id FROM authorizations WHERE status = 'active' AND expires_at <= now() ORDER BY expires_at LIMIT $1`,
    [batch],
  );
  let expired = 0;
  const failed: string[] = [];
  for (const { id } of due) {
    try {
      await finishAuthorization(ctx, id, { kind: 'expire' });
      expired++;
    } catch (error) {
      // Captured or voided meanwhile by the caller: nothing left to expire.
      if (error instanceof ServiceError && error.status === 409) continue;
      failed.push(`${id}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (failed.length > 0) {
    throw new Error(
      `${failed.length} due hold(s) could not expire (${expired} did): ${failed.slice(0, 5).join('; ')}`,
    );
  }
  return { expired };
}
