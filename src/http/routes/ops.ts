import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Db } from '../../store/db.ts';
import { renderDocs } from '../docs.ts';
import type { AppEnv } from '../env.ts';
import type { Metrics } from '../metrics.ts';
import { problem } from '../problem.ts';

export const OPENAPI_INFO = {
  title: 'Tally',
  version: '0.1.0',
  description:
    'AI usage metering, credits ledger, budgets and usage pages. Authenticate with "Authorization: Bearer <key>".',
};

export function opsRoutes(app: OpenAPIHono<AppEnv>, deps: { db: Db; metrics: Metrics }) {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await deps.db.query('SELECT 1');
      return c.json({ status: 'ready', database: deps.db.kind });
    } catch {
      return problem(c, 503, 'unavailable', 'The database is not reachable');
    }
  });
  app.get('/metrics', async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }),
  );
  const document = () =>
    app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      security: [{ bearer: [] }],
    });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.get('/openapi.json', (c) => c.json(document()));
  app.get('/docs', (c) => c.html(renderDocs(document() as never)));
}
