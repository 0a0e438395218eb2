import type { MiddlewareHandler } from 'hono';
import type { Config } from '../../config.ts';
import { authenticateEmbedToken } from '../../services/embedTokens/authenticateEmbedToken.ts';
import { EMBED_TOKEN_PREFIX } from '../../services/embedTokens/token.ts';
import { authenticate, bearerToken } from '../../services/keys/authenticate.ts';
import type { PriceBook } from '../../services/pricing/priceBook.ts';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';
import { problem } from '../problem.ts';

/**
 * What only the host app's backend does. An embed token's principal lacks events:write anyway; refusing
 * these paths up front answers with the reason before any body is read.
 */
const BACKEND_ONLY = /^\/v1\/(events|authorizations)(\/|$)/;

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
    const secret = bearerToken(header);
    const embedded = secret?.startsWith(EMBED_TOKEN_PREFIX) ?? false;
    if (embedded && BACKEND_ONLY.test(c.req.path)) {
      return problem(c, 403, 'forbidden', 'An embed token opens the usage page; send usage with an API key');
    }
    const principal = embedded
      ? await authenticateEmbedToken(deps.db, secret!)
      : await authenticate(deps.db, secret);
    c.set('ctx', { ...deps, principal, requestId: c.get('requestId') });
    await next();
  };
}
