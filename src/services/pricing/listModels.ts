import type { Ctx } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { type ModelView, modelView } from './shape.ts';

/** The provider cost catalog as it stands now, searchable by provider, model id or name. */
export async function listModels(
  ctx: Ctx,
  query: { q?: string; provider?: string; limit: number; cursor?: string },
): Promise<Page<ModelView>> {
  await ctx.prices.refresh(ctx.db);
  const after = decodeCursor(query.cursor, ['text'])?.[0] as string | undefined;
  const needle = query.q?.toLowerCase();
  const key = (r: { provider: string; model: string }) => `${r.provider}/${r.model}`;
  const rows = ctx.prices
    .current()
    .filter((r) => !query.provider || r.provider === query.provider.toLowerCase())
    .filter(
      (r) =>
        !needle || key(r).toLowerCase().includes(needle) || (r.name ?? '').toLowerCase().includes(needle),
    )
    .sort((a, b) => (key(a) < key(b) ? -1 : 1))
    .filter((r) => after === undefined || key(r) > after)
    .slice(0, query.limit + 1);
  return toPage(rows, query.limit, (r) => [key(r)], modelView);
}
