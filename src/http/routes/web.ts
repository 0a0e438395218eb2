/**
 * The Usage & Billing web app: the Vite build in dist/web, served with a strict Content-Security-Policy.
 * Client-side routes (/usage/..., /embed) all answer the app's index.html; hashed assets are immutable.
 * Its live pages follow an org through a stream of server-sent events.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { watchOrgUsage } from '../../services/live/watchOrgUsage.ts';
import type { AppEnv } from '../env.ts';
import { errorResponses, OrgParam } from '../schemas.ts';

export const WEB_DIST = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

/**
 * Only the app's own scripts and styles, no inline code, API calls to this origin only. The sites
 * that may frame the page are the operator's choice (TALLY_FRAME_ANCESTORS); any, by default, as the
 * page holds no ambient credential (no cookies), only the token it was opened with.
 */
function contentSecurityPolicy(frameAncestors: '*' | 'none' | string[]): string {
  const framers =
    frameAncestors === '*'
      ? '*'
      : frameAncestors === 'none'
        ? "'none'"
        : ["'self'", ...frameAncestors].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    `frame-ancestors ${framers}`,
  ].join('; ');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const notBuilt = (c: Context) =>
  c.text('The web app is not built: run `npm run build:web` (npm start does it when needed).', 503);

async function sendFile(
  c: Context,
  relative: string,
  cacheControl: string,
  extra: Record<string, string> = {},
) {
  const path = normalize(join(WEB_DIST, relative));
  if (!path.startsWith(WEB_DIST)) return c.notFound();
  try {
    if (!(await stat(path)).isFile()) return c.notFound();
  } catch {
    return c.notFound();
  }
  const type = TYPES[extname(path)] ?? 'application/octet-stream';
  return c.body(new Uint8Array(await readFile(path)), 200, {
    'content-type': type,
    'cache-control': cacheControl,
    'x-content-type-options': 'nosniff',
    ...extra,
  });
}

/**
 * A stream ends after this long and the page reconnects: the credential is checked again, so a revoked
 * key or a removed member stops hearing within it. An embed token's stream ends when the token does.
 */
export const LIVE_STREAM_SECONDS = 60;
/** A comment line this often: proxies keep the response open and a client that left is noticed. */
const KEEP_ALIVE_MS = 15_000;

export function webRoutes(app: OpenAPIHono<AppEnv>, frameAncestors: '*' | 'none' | string[]) {
  const csp = contentSecurityPolicy(frameAncestors);
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/usage/stream',
      tags: ['Usage'],
      summary: 'Server-sent events: "changed" soon after the org\'s usage, balance or limits change',
      description:
        'Sends "ready" once watching, then "changed" (at most once a second) whenever the figures move, from any Tally process. ' +
        `Ends after ${LIVE_STREAM_SECONDS} s (or when an embed token expires): reconnect, and reload once on "ready" to catch up.`,
      request: { params: OrgParam },
      responses: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } },
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = c.get('ctx');
      const orgId = c.req.valid('param').org;
      let wake = () => {};
      let changed = false;
      let ended = false;
      const stop = await watchOrgUsage(ctx, orgId, {
        changed() {
          changed = true;
          wake();
        },
        ended() {
          ended = true;
          wake();
        },
      });
      const expires =
        ctx.principal.kind === 'embed' ? ctx.principal.expiresAt.getTime() : Number.POSITIVE_INFINITY;
      const until = Math.min(Date.now() + LIVE_STREAM_SECONDS * 1000, expires);
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => wake());
        try {
          await stream.writeSSE({ event: 'ready', data: JSON.stringify({ org: orgId }), retry: 1000 });
          while (!stream.aborted && !ended && Date.now() < until) {
            if (!changed) {
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, Math.min(KEEP_ALIVE_MS, until - Date.now()));
                wake = () => {
                  clearTimeout(timer);
                  resolve();
                };
              });
            }
            if (changed) {
              changed = false;
              await stream.writeSSE({ event: 'changed', data: JSON.stringify({ org: orgId }) });
            } else if (!ended && Date.now() < until) {
              await stream.write(': keep-alive\n\n');
            }
          }
        } finally {
          stop();
        }
      });
    },
  );

  const page = async (c: Context) => {
    let html: string;
    try {
      html = await readFile(join(WEB_DIST, 'index.html'), 'utf8');
    } catch {
      return notBuilt(c);
    }
    return c.body(html, 200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
      'content-security-policy': csp,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
  };
  app.get('/', page);
  app.get('/embed', page);
  app.get('/embed/*', page);
  app.get('/usage', page);
  app.get('/usage/*', page);
  app.get('/assets/*', (c) =>
    sendFile(c, c.req.path.slice(1), 'public, max-age=31536000, immutable', {
      // The usage bar's script runs on the host app's pages: its chunks load cross-origin.
      'access-control-allow-origin': '*',
    }),
  );
  app.get('/usage-bar.js', (c) =>
    sendFile(c, 'usage-bar.js', 'public, max-age=300', { 'access-control-allow-origin': '*' }),
  );
}
