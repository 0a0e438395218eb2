/** Where a gateway call goes: the org's own provider account when it set one, else the operator's. */
import type { Config } from '../../config.ts';
import type { Queryable } from '../../store/db.ts';
import { ServiceError } from '../errors.ts';
import { open } from './secretBox.ts';
import type { ProviderName } from './wire.ts';

export interface Upstream {
  baseUrl: string;
  key: string | null;
}

export function operatorUpstream(config: Config, provider: ProviderName): Upstream {
  return provider === 'openai'
    ? { baseUrl: config.TALLY_UPSTREAM_OPENAI_URL, key: config.OPENAI_API_KEY ?? null }
    : { baseUrl: config.TALLY_UPSTREAM_ANTHROPIC_URL, key: config.ANTHROPIC_API_KEY ?? null };
}

export async function upstreamFor(
  db: Queryable,
  config: Config,
  orgId: string,
  provider: ProviderName,
): Promise<Upstream> {
  const [own] = await db.query<{ base_url: string | null; api_key_encrypted: string }>(
    'SELECT base_url, api_key_encrypted FROM gateway_upstreams WHERE org_id = $1 AND provider = $2',
    [orgId, provider],
  );
  const fallback = operatorUpstream(config, provider);
  if (!own) return fallback;
  if (!config.TALLY_SECRET_KEY) {
    throw new ServiceError(
      503,
      'secret_key_missing',
      'The org has its own provider key but TALLY_SECRET_KEY is not set',
    );
  }
  return {
    baseUrl: own.base_url ?? fallback.baseUrl,
    key: open(own.api_key_encrypted, config.TALLY_SECRET_KEY),
  };
}

/** `https://api.openai.com` + `chat/completions` -> `https://api.openai.com/v1/chat/completions`. */
export function upstreamUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1/${path}`;
}
