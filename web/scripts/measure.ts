/**
 * Measures the web app for BENCHMARKS.md: the production bundle's JavaScript gzipped, and the time from
 * navigation to the overview's first full render (every panel loaded) on the full demo organization,
 * in Debian's Chromium against a Tally on embedded Postgres. Run: npx tsx web/scripts/measure.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { loadConfig } from '../../src/config.ts';
import { seedDemo } from '../../src/demo/seedDemo.ts';
import { listen, prepare } from '../../src/server.ts';
import { openEmbedded } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { ensureWebBuilt } from './ensureBuilt.ts';

const DIST = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const RUNS = 5;

function bundleSizes() {
  const files = [
    ...readdirSync(join(DIST, 'assets')).map((name) => join('assets', name)),
    'usage-bar.js',
  ].filter((name) => /\.(js|css)$/.test(name));
  return files.map((name) => {
    const bytes = readFileSync(join(DIST, name));
    return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
}

/** Every panel of the overview has its answer: figures, charts, tables, forecast; nothing still loading. */
const fullyRendered = () =>
  document.querySelector('[data-testid="kpi-calls"]') !== null &&
  document.querySelectorAll('.chart polyline').length >= 2 &&
  document.querySelectorAll('table.activity tbody tr').length > 0 &&
  document.querySelector('.member-list li') !== null &&
  document.querySelector('.cycle-cards') !== null &&
  document.body.textContent?.includes('Conservative') === true &&
  document.querySelectorAll('.loading').length === 0;

async function main() {
  await ensureWebBuilt();
  const sizes = bundleSizes();
  const db = await openEmbedded({});
  await migrate(db);
  const tally = await prepare(loadConfig({ TALLY_LOG: 'off', PORT: '0', HOST: '127.0.0.1' }), db);
  const seeded = await seedDemo(tally, { now: new Date() });
  const server = await listen(tally);
  const [events] = await db.query<{ n: string }>('SELECT count(*) AS n FROM events');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const [owner] = await db.query<{ id: string }>(
    `SELECT id FROM members WHERE org_id = $1 AND role = 'owner' LIMIT 1`,
    [seeded!.orgId],
  );
  const { createEmbedToken } = await import('../../src/services/embedTokens/createEmbedToken.ts');
  const ctx = {
    db,
    config: tally.config,
    prices: tally.prices,
    principal: { kind: 'operator' as const, id: 'op_measure' },
    requestId: 'measure',
  };
  const timings: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { token } = await createEmbedToken(
      ctx,
      seeded!.orgId,
      { member: owner!.id, role: 'owner' },
      server.url,
    );
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/embed#token=${token}`);
    await page.waitForFunction(fullyRendered, undefined, { polling: 'raf', timeout: 30_000 });
    timings.push(await page.evaluate(() => performance.now()));
    await context.close();
  }
  await browser.close();
  await server.close();
  await db.close();
  const js = sizes.filter((s) => s.name.endsWith('.js'));
  const sorted = [...timings].sort((a, b) => a - b);
  console.log(
    JSON.stringify(
      {
        demo_events: Number(events!.n),
        files: sizes,
        js_gzip_total_kb: Math.round(js.reduce((sum, s) => sum + s.gzip, 0) / 102.4) / 10,
        first_full_render_ms: {
          runs: timings.map(Math.round),
          median: Math.round(sorted[Math.floor(RUNS / 2)]!),
          max: Math.round(sorted.at(-1)!),
        },
      },
      null,
      2,
    ),
  );
}

await main();
