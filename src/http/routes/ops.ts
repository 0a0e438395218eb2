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
  app.get('/metrics', async (c) => {
    try {
      return c.body(await deps.metrics.text(), 200, { 'content-type': deps.metrics.registry.contentType });
    } catch (error) {
      return problem(c, 503, 'unavailable', (error as Error).message);
    }
  });
  // Built at the first request (every route is registered by then) and kept: building it took
  // 54 ms of CPU, and these pages answer anyone, without a key.
  let served: { json: string; html: string } | undefined;
  const document = () => {
    if (!served) {
      const doc = app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: OPENAPI_INFO,
        security: [{ bearer: [] }],
      });
      served = { json: JSON.stringify(doc), html: renderDocs(doc as never) };
    }
    return served;
  };
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  documentOpsPaths(app);
  app.get('/openapi.json', (c) => c.body(document().json, 200, { 'content-type': 'application/json' }));
  app.get('/docs', (c) => c.html(document().html));
}

/** The ops endpoints answer outside the /v1 contract (no key), but belong in the served document. */
function documentOpsPaths(app: OpenAPIHono<AppEnv>) {
  const paths = [
    ['/healthz', 'Liveness: the process answers', { 200: { description: '{"status":"ok"}' } }],
    [
      '/readyz',
      'Readiness: the database answers',
      {
        200: { description: '{"status":"ready","database":"embedded"|"server"}' },
        503: { description: 'The database is not reachable (problem+json)' },
      },
    ],
    ['/metrics', 'Prometheus metrics (text exposition format)', { 200: { description: 'Metrics' } }],
    ['/openapi.json', 'This document', { 200: { description: 'OpenAPI 3.1' } }],
    ['/docs', 'The readable API reference (HTML)', { 200: { description: 'HTML' } }],
  ] as const;
  for (const [path, summary, responses] of paths) {
    app.openAPIRegistry.registerPath({
      method: 'get',
      path,
      tags: ['Operations'],
      summary,
      security: [],
      responses,
    });
  }
}
