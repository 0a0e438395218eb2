import type { MiddlewareHandler } from 'hono';
import type { Config } from '../../config.ts';
import { authenticateEmbedToken } from '../../services/embedTokens/authenticateEmbedToken.ts';
import { EMBED_TOKEN_PREFIX } from '../../services/embedTokens/token.ts';
import { authenticate } from '../../services/keys/authenticate.ts';
import type { PriceBook } from '../../services/pricing/priceBook.ts';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';

/**
 * Authenticates the bearer credential (an API key, or an embed token scoped to one org, member and
 * role) and builds the service context for the request.
 */
export function authMiddleware(deps: {
  db: Db;
  config: Config;
  prices: PriceBook;
}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const secret = header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    const principal = secret?.startsWith(EMBED_TOKEN_PREFIX)
      ? await authenticateEmbedToken(deps.db, secret)
      : await authenticate(deps.db, secret);
    c.set('ctx', { ...deps, principal, requestId: c.get('requestId') });
    await next();
  };
}
