/**
 * The Usage & Billing web app: the Vite build in dist/web, served with a strict Content-Security-Policy.
 * Client-side routes (/usage/..., /embed) all answer the app's index.html; hashed assets are immutable.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../env.ts';

export const WEB_DIST = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

/**
 * Only the app's own scripts and styles, no inline code, API calls to this origin only. Any site may
 * frame the page: it holds no ambient credential (no cookies), only the token it was opened with.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  'frame-ancestors *',
].join('; ');

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

export function webRoutes(app: OpenAPIHono<AppEnv>) {
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
      'content-security-policy': CSP,
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
