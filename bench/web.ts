/**
 * The web app: the production bundle's JavaScript gzipped, and the time from navigation to the
 * overview's first full render (every panel answered and drawn) on the full demo organization, in
 * Debian's Chromium against a Tally on embedded Postgres, each run in a fresh browser context (cold
 * HTTP cache). Time is performance.now() in the page when the last panel is drawn (checked each frame).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import { seedDemo } from '../src/demo/seedDemo.ts';
import { listen, prepare } from '../src/server.ts';
import { createEmbedToken } from '../src/services/embedTokens/createEmbedToken.ts';
import { openEmbedded } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { ensureWebBuilt } from '../web/scripts/ensureBuilt.ts';
import type { BenchModule, BenchOptions, BenchResult } from './types.ts';

const DIST = fileURLToPath(new URL('../dist/web/', import.meta.url));

function scripts() {
  return [...readdirSync(join(DIST, 'assets')).map((name) => join('assets', name)), 'usage-bar.js']
    .filter((name) => name.endsWith('.js'))
    .map((name) => {
      const bytes = readFileSync(join(DIST, name));
      return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    });
}

/** The little of the page's DOM the check reads (this project's Node typings have no DOM). */
interface PageDocument {
  querySelector(selector: string): unknown;
  querySelectorAll(selector: string): { length: number };
  body: { textContent: string | null };
}

/** Every panel of the overview has its answer: figures, charts, tables, forecast; nothing still loading. */
function fullyRendered(): boolean {
  const doc = (globalThis as unknown as { document: PageDocument }).document;
  return (
    doc.querySelector('[data-testid="kpi-calls"]') !== null &&
    doc.querySelectorAll('.chart polyline').length >= 2 &&
    doc.querySelectorAll('table.activity tbody tr').length > 0 &&
    doc.querySelector('.member-list li') !== null &&
    doc.querySelector('.cycle-cards') !== null &&
    doc.body.textContent?.includes('Conservative') === true &&
    doc.querySelectorAll('.loading').length === 0
  );
}

export const web: BenchModule = {
  name: 'web',
  description:
    'The Usage & Billing web app: production JavaScript gzipped (level 9), and the first full render of the overview (every panel answered and drawn, ~20 API calls) on the demo organization, in Debian Chromium against Tally on embedded PGlite, each run a fresh browser context with a cold cache.',
  async run(options: BenchOptions): Promise<BenchResult> {
    await ensureWebBuilt();
    const files = scripts();
    const db = await openEmbedded({});
    await migrate(db);
    const tally = await prepare(loadConfig({ TALLY_LOG: 'off', PORT: '0', HOST: '127.0.0.1' }), db);
    const demo = await seedDemo(
      tally,
      options.quick ? { now: new Date(), volume: 0.2 } : { now: new Date() },
    );
    const [events] = await db.query<{ n: string }>('SELECT count(*) AS n FROM events');
    const [owner] = await db.query<{ id: string }>(
      `SELECT id FROM members WHERE org_id = $1 AND role = 'owner' LIMIT 1`,
      [demo!.orgId],
    );
    const server = await listen(tally);
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
    const ctx = {
      db,
      config: tally.config,
      prices: tally.prices,
      principal: { kind: 'operator' as const, id: 'op_bench' },
      requestId: 'bench-web',
    };
    const renders: number[] = [];
    try {
      for (let run = 0; run < (options.quick ? 2 : 7); run++) {
        const { token } = await createEmbedToken(
          ctx,
          demo!.orgId,
          { member: owner!.id, role: 'owner' },
          server.url,
        );
        const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
        const page = await context.newPage();
        await page.goto(`${server.url}/embed#token=${token}`);
        await page.waitForFunction(fullyRendered, undefined, { polling: 'raf', timeout: 30_000 });
        renders.push(await page.evaluate(() => performance.now()));
        await context.close();
        options.log(`  overview rendered in ${Math.round(renders.at(-1)!)} ms`);
      }
    } finally {
      await browser.close();
      await server.close();
      await db.close();
    }
    const kb = (bytes: number) => Math.round(bytes / 102.4) / 10;
    return {
      measurements: [
        {
          benchmark: 'web app JavaScript, gzipped',
          database: '-',
          unit: 'KB',
          runs: [kb(files.reduce((sum, f) => sum + f.gzip, 0))],
          better: 'lower',
          target: 250,
        },
        {
          benchmark: `overview first full render (${Number(events!.n)} demo events)`,
          database: 'PGlite',
          unit: 'ms',
          runs: renders.map(Math.round),
          better: 'lower',
          target: 1500,
        },
      ],
      sections: [
        {
          title: 'Web app files',
          lines: [
            '| file | bytes | gzipped |',
            '| ---- | ----- | ------- |',
            ...files.map(
              (f) => `| ${f.name.replace(/-[\w-]{8}\.js$/, '-[hash].js')} | ${f.raw} | ${f.gzip} |`,
            ),
            '',
            `Render runs (ms): ${renders.map(Math.round).join(', ')}.`,
          ],
        },
      ],
    };
  },
};
