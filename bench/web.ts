/**
 * The web app: the production bundle's JavaScript gzipped, and the time from navigation to the
 * overview's first full render (every panel answered and drawn) on the full demo organization, in
 * Debian's Chromium against a Tally on embedded Postgres, each run in a fresh browser context (cold
 * HTTP cache). Time is performance.now() in the page when the last panel is drawn (checked each frame).
 * Live updates: the time from an events POST's answer to the "changed" event on an open usage stream
 * (the watcher reads once a second, so about half a second is expected), and the time of the
 * watcher's one query for the demo org.
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
import { readOrgFingerprints } from '../src/services/live/orgChanges.ts';
import { openEmbedded } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { ensureWebBuilt } from '../web/scripts/ensureBuilt.ts';
import type { BenchModule, BenchOptions, BenchResult } from './types.ts';

/** The bench's own operator key: it sends the events the live-update measure waits for. */
const OPERATOR_KEY = `tally_op_bench_web_${'0'.repeat(32)}`;

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
    const tally = await prepare(
      loadConfig({ TALLY_LOG: 'off', PORT: '0', HOST: '127.0.0.1', TALLY_ADMIN_KEY: OPERATOR_KEY }),
      db,
    );
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
    const pushes: number[] = [];
    const watchQueries: number[] = [];
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
      const { token } = await createEmbedToken(
        ctx,
        demo!.orgId,
        { member: owner!.id, role: 'owner' },
        server.url,
      );
      pushes.push(...(await pushLatencies(server.url, token, demo!.orgId, options.quick ? 5 : 20)));
      options.log(`  pushed after ${pushes.map(Math.round).join(', ')} ms`);
      for (let run = 0; run < 20; run++) {
        const started = performance.now();
        await readOrgFingerprints(db, [demo!.orgId]);
        watchQueries.push(performance.now() - started);
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
          benchmark: 'live update: events POST answered to "changed" on the usage stream',
          database: 'PGlite',
          unit: 'ms',
          runs: pushes.map(Math.round),
          better: 'lower',
        },
        {
          benchmark: `live watcher query, one org (${Number(events!.n)} demo events)`,
          database: 'PGlite',
          unit: 'ms',
          runs: watchQueries.map((ms) => Math.round(ms * 100) / 100),
          better: 'lower',
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

/**
 * Sends one event at a time through the API and times, from each POST's answer, the "changed" event
 * on a usage stream opened before (as the overview and the usage bar hold one).
 */
async function pushLatencies(base: string, token: string, orgId: string, count: number): Promise<number[]> {
  const controller = new AbortController();
  const stream = await fetch(`${base}/v1/orgs/${orgId}/usage/stream`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const nextEvent = async (): Promise<string> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const name = buffer.slice(0, end).match(/^event: (.*)$/m)?.[1];
        buffer = buffer.slice(end + 2);
        if (name) return name;
        continue;
      }
      const { done, value } = await reader.read();
      if (done) throw new Error('the usage stream ended');
      buffer += value;
    }
  };
  if ((await nextEvent()) !== 'ready') throw new Error('the usage stream did not start');
  const [member] = await fetch(`${base}/v1/orgs/${orgId}/members?limit=1`, {
    headers: { authorization: `Bearer ${token}` },
  })
    .then((r) => r.json() as Promise<{ data: { external_id: string }[] }>)
    .then((r) => r.data);
  const latencies: number[] = [];
  try {
    for (let n = 0; n < count; n++) {
      // The host app's backend sends usage; an embed token may not, so the operator's bench context does.
      const sent = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          events: [
            {
              id: `bench-live-${Date.now()}-${n}`,
              org_id: orgId,
              member: member!.external_id,
              feature: 'Chat',
              provider: 'openai',
              model: 'gpt-4o-mini',
              occurred_at: new Date().toISOString(),
              usage: { input_tokens: 1000, output_tokens: 100 },
            },
          ],
        }),
      });
      if (!sent.ok) throw new Error(`events POST answered ${sent.status}`);
      const answered = performance.now();
      while ((await nextEvent()) !== 'changed') {}
      latencies.push(performance.now() - answered);
      // Past the next tick, so each event is its own change, and at a random point of the watcher's second.
      await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000));
    }
  } finally {
    controller.abort();
  }
  return latencies;
}
