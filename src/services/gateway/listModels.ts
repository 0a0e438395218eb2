/**
 * The provider's model list (`GET /v1/models`), which some clients read at start-up: passed
 * through unmetered for a caller with a valid gateway or org key.
 */

import type { Ctx } from '../context.ts';
import { passedHeaders } from './meterCall.ts';
import type { GatewayCaller } from './resolveCaller.ts';
import { upstreamFor, upstreamUrl } from './upstream.ts';
import type { ProviderWire } from './wire.ts';

export async function listModels(ctx: Ctx, wire: ProviderWire, caller: GatewayCaller, headers: Headers) {
  const upstream = await upstreamFor(ctx.db, ctx.config, caller.orgId, wire.provider);
  const { 'content-type': _, ...forwarded } = wire.upstreamHeaders(headers, upstream.key);
  const answer = await fetch(upstreamUrl(upstream.baseUrl, 'models'), { headers: forwarded });
  return new Response(await answer.arrayBuffer(), {
    status: answer.status,
    headers: passedHeaders(answer.headers),
  });
}
