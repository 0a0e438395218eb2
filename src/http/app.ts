/** The HTTP app: middleware order, route groups and the mapping of every failure to problem+json. */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Config } from '../config.ts';
import { newId } from '../domain/ids.ts';
import type { PriceBook } from '../services/pricing/priceBook.ts';
import type { Db } from '../store/db.ts';
import type { AppEnv } from './env.ts';
import type { Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { authMiddleware } from './middleware/auth.ts';
import {
  authFailureLimiter,
  authFailureLimitMiddleware,
  FailureLimit,
  gatewayAuthFailureLimitMiddleware,
} from './middleware/authFailureLimit.ts';
import { bodySizeLimit } from './middleware/bodySize.ts';
import { corsMiddleware } from './middleware/cors.ts';
import { idempotencyMiddleware } from './middleware/idempotency.ts';
import { jsonGuard } from './middleware/jsonGuard.ts';
import { gatewayRateLimitMiddleware, KeyRateLimiter, rateLimitMiddleware } from './middleware/rateLimit.ts';
import { errorToProblem, problem, validationProblem } from './problem.ts';
import { alertRoutes } from './routes/alerts.ts';
import { authorizationRoutes } from './routes/authorizations.ts';
import { embedTokenRoutes } from './routes/embedTokens.ts';
import { eventRoutes } from './routes/events.ts';
import { gatewayRoutes, gatewaySettingsRoutes } from './routes/gateway.ts';
import { keyRoutes } from './routes/keys.ts';
import { ledgerRoutes } from './routes/ledger.ts';
import { limitRoutes } from './routes/limits.ts';
import { memberRoutes } from './routes/members.ts';
import { opsRoutes } from './routes/ops.ts';
import { orgRoutes } from './routes/orgs.ts';
import { paymentRoutes, unauthenticatedPaymentRoutes } from './routes/payments.ts';
import { pricingRoutes } from './routes/pricing.ts';
import { retentionRoutes } from './routes/retention.ts';
import { usageRoutes } from './routes/usage.ts';
import { usageExportRoutes } from './routes/usageExport.ts';
import { usageInsightRoutes } from './routes/usageInsights.ts';
import { webRoutes } from './routes/web.ts';
import { webhookRoutes } from './routes/webhooks.ts';

export interface AppDeps {
  db: Db;
  config: Config;
  prices: PriceBook;
  logger: Logger;
}

export function buildApp(deps: AppDeps) {
  const metrics = createMetrics(deps.db);
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) =>
      result.success ? undefined : validationProblem(c, result.error, result.target),
  });

  app.use('*', async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : newId('req');
    c.set('requestId', requestId);
    // Set before the answer exists, it is part of the answer as it is made. Set on a finished
    // answer, hono would copy it into a second full Response (two undici Responses a request).
    c.header('x-request-id', requestId);
    await next();
    // An answer made as a Response of its own (the gateway's) did not take it.
    if (!c.res.headers.has('x-request-id')) c.header('x-request-id', requestId);
    const route = routePath(c);
    const seconds = (performance.now() - started) / 1000;
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.duration.observe({ method: c.req.method, route }, seconds);
    deps.logger.info({
      request_id: requestId,
      method: c.req.method,
      route,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(seconds * 10_000) / 10,
      principal: c.get('ctx')?.principal.id,
    });
  });
  // First, so that every answer to an allowed origin (errors too) carries its CORS headers.
  app.use('/v1/*', corsMiddleware(deps.config.TALLY_CORS_ORIGINS));
  app.use(
    '/v1/*',
    bodySizeLimit(deps.config.TALLY_BODY_LIMIT_BYTES, (c) =>
      problem(
        c,
        413,
        'payload_too_large',
        `The request body is larger than ${deps.config.TALLY_BODY_LIMIT_BYTES} bytes`,
      ),
    ),
  );
  app.use('/v1/*', async (c, next) => {
    const type = c.req.header('content-type');
    if (
      ['POST', 'PUT', 'PATCH'].includes(c.req.method) &&
      type &&
      !/^application\/json\s*(;|$)/i.test(type)
    ) {
      return problem(c, 415, 'unsupported_media_type', 'Send the body as application/json');
    }
    await next();
  });
  // The Stripe webhook and the local checkout page authenticate otherwise: they answer before auth runs.
  unauthenticatedPaymentRoutes(app, deps);
  // One limiter for both: per key, shared with the other processes on a Postgres server.
  const limiter = new KeyRateLimiter({
    perSecond: deps.config.TALLY_RATE_LIMIT_PER_SECOND,
    burst: deps.config.TALLY_RATE_LIMIT_BURST,
    shared: deps.db,
  });
  // Failed authentications per client address, checked first: a blocked address costs no lookup.
  const failures = new FailureLimit(authFailureLimiter(limiter), deps.config.TALLY_TRUSTED_PROXIES);
  app.use('/gateway/*', gatewayAuthFailureLimitMiddleware(failures));
  app.use('/gateway/*', gatewayRateLimitMiddleware(limiter));
  // The gateway answers in each provider's format and reads its own raw body: it stays out of /v1.
  gatewayRoutes(app, deps);
  app.use('/v1/*', authFailureLimitMiddleware(failures));
  app.use('/v1/*', authMiddleware(deps));
  app.use('/v1/*', rateLimitMiddleware(limiter));
  // Tenant isolation for every org-scoped route, before any validation or work: an org key sees
  // another org exactly as a missing one. Services check again (scopeOrg); this makes it uniform.
  const ownOrgOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
    const principal = c.get('ctx').principal;
    if (principal.kind !== 'operator' && c.req.param('org') !== principal.orgId) {
      return problem(c, 404, 'not_found', 'Organization not found', 'org');
    }
    await next();
  };
  app.use('/v1/orgs/:org/*', ownOrgOnly);
  app.use('/v1/*', jsonGuard());
  app.use('/v1/*', idempotencyMiddleware(deps.db));

  orgRoutes(app);
  memberRoutes(app);
  keyRoutes(app);
  eventRoutes(app, (statuses) => {
    for (const status of statuses) metrics.events.inc({ status });
  });
  pricingRoutes(app);
  ledgerRoutes(app);
  authorizationRoutes(app, (decision, reason) => metrics.holds.inc({ decision, reason }));
  limitRoutes(app);
  usageRoutes(app);
  usageInsightRoutes(app);
  usageExportRoutes(app);
  alertRoutes(app);
  webhookRoutes(app);
  paymentRoutes(app);
  gatewaySettingsRoutes(app);
  embedTokenRoutes(app);
  retentionRoutes(app);
  webRoutes(app, deps.config.TALLY_FRAME_ANCESTORS);
  opsRoutes(app, { db: deps.db, metrics });

  app.notFound((c) => problem(c, 404, 'not_found', `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) =>
    errorToProblem(c, error, (e) =>
      deps.logger.error({ request_id: c.get('requestId'), error: e instanceof Error ? e.stack : String(e) }),
    ),
  );
  return app;
}
