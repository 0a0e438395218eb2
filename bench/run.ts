/**
 * `npm run bench [-- name ...]`: runs the benchmark modules, prints one table of every figure and
 * rewrites BENCHMARKS.md. A new benchmark is a module (see types.ts) added to MODULES below.
 *
 * Environment: BENCH_QUICK=1 (small sizes; BENCHMARKS.md left alone unless BENCH_WRITE=1),
 * BENCH_DB=embedded|server|both, BENCH_PROFILE=0|1 (extra CPU-profiled run; default on unless quick),
 * BENCH_PROFILE_DIR (also save each profiled run's whole profile there, `<name>.cpuprofile`),
 * BENCH_SECTIONS=1 (also print the detail sections, e.g. profiles, that BENCHMARKS.md gets),
 * TALLY_BENCH_DATABASE_URL (the Postgres server, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { authorize } from './authorize.ts';
import { coldStart } from './coldStart.ts';
import { exportBench } from './export.ts';
import { gateway } from './gateway.ts';
import { ingest } from './ingest.ts';
import { embeddedDatabase } from './support/databases.ts';
import { machine } from './support/machine.ts';
import { consoleTable, targetLine, writeBenchmarksMd } from './support/report.ts';
import type { BenchModule, BenchOptions, BenchResult } from './types.ts';
import { usage } from './usage.ts';
import { web } from './web.ts';

/** Every benchmark, in the order they run and appear in BENCHMARKS.md. */
export const MODULES: BenchModule[] = [ingest, authorize, usage, exportBench, gateway, web, coldStart];

const OUTPUT = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

async function serverVersion(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    return `PostgreSQL ${String(rows[0].server_version).split(' ')[0]}`;
  } catch {
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}

async function main() {
  const env = process.env;
  const quick = env.BENCH_QUICK === '1';
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !MODULES.some((m) => m.name === w));
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark ${unknown.join(', ')}; known: ${MODULES.map((m) => m.name).join(', ')}`,
    );
  }
  const selected = wanted.length > 0 ? MODULES.filter((m) => wanted.includes(m.name)) : MODULES;
  const which = env.BENCH_DB ?? 'both';
  if (!['embedded', 'server', 'both'].includes(which))
    throw new Error('BENCH_DB must be embedded, server or both');
  const serverUrl = env.TALLY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const options: BenchOptions = {
    quick,
    databases: which === 'both' ? ['embedded', 'server'] : [which as 'embedded' | 'server'],
    serverUrl,
    profile: env.BENCH_PROFILE ? env.BENCH_PROFILE === '1' : !quick,
    log: (line) => process.stderr.write(`${line}\n`),
  };

  const versions: Record<string, string> = {};
  const embedded = embeddedDatabase();
  versions['PGlite (embedded)'] = await embedded.version();
  await embedded.dispose();
  if (options.databases.includes('server')) {
    const version = await serverVersion(serverUrl);
    if (!version)
      throw new Error(`No Postgres server answers at ${serverUrl} (set BENCH_DB=embedded to skip it)`);
    versions['Postgres server'] = version;
  }

  const where = machine();
  const started = performance.now();
  const results = new Map<string, BenchResult>();
  for (const module of selected) {
    options.log(`bench ${module.name}${quick ? ' (quick)' : ''}`);
    results.set(module.name, await module.run(options));
  }
  const measurements = [...results.values()].flatMap((r) => r.measurements);
  process.stdout.write(`\n${consoleTable(measurements)}\n\n`);
  for (const m of measurements) {
    const line = targetLine(m);
    if (line) process.stdout.write(`${line}\n`);
  }
  if (env.BENCH_SECTIONS === '1') {
    for (const section of [...results.values()].flatMap((r) => r.sections)) {
      process.stdout.write(`\n### ${section.title}\n\n${section.lines.join('\n')}\n`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  if (!quick || env.BENCH_WRITE === '1') {
    writeBenchmarksMd(OUTPUT, where, versions, MODULES, results, quick);
    process.stdout.write(`\nBENCHMARKS.md written (${seconds} s)\n`);
  } else {
    process.stdout.write(
      `\nquick run (${seconds} s): BENCHMARKS.md left as it was (BENCH_WRITE=1 writes it)\n`,
    );
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? String(error)}\n`);
  process.exit(1);
});
