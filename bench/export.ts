/**
 * Usage export: rows per second of `GET /v1/orgs/{org}/usage/export` (CSV and JSON Lines) read to the
 * end over HTTP, and the peak memory the process gains meanwhile. The org's events are realistic ones
 * sent through `POST /v1/events`, then copied in SQL with new ids until the org holds the full count
 * (an export reads raw events only, so the copies need no rollups). Baseline: the same org's rows
 * written out by one raw `COPY (SELECT ...) TO STDOUT`.
 */
import {
  BENCH_OPERATOR_KEY,
  type BenchDatabase,
  openBenchDatabase,
  type RunningTally,
} from './support/databases.ts';
import { DEFAULT_SHAPE, makeEvents } from './support/events.ts';
import { fmt, median } from './support/stats.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

const SEED_EVENTS = 10_000;
const RUNS = 3;
const FORMATS = ['csv', 'jsonl'] as const;

async function call<T>(run: RunningTally, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${run.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer).slice(0, 300)}`);
  return answer as T;
}

/** One org with `total` events: SEED_EVENTS sent over HTTP, the rest copied from them in SQL. */
async function fillOrg(db: BenchDatabase, total: number): Promise<string> {
  const run = await db.startTally();
  let orgId: string;
  try {
    const org = await call<{ id: string }>(run, 'POST', '/v1/orgs', {
      name: 'Bench export',
      currency: 'EUR',
      timezone: 'Europe/Berlin',
    });
    orgId = org.id;
    const events = makeEvents({ ...DEFAULT_SHAPE, orgIds: [orgId] }, Math.min(SEED_EVENTS, total), 'exp', 7);
    for (let at = 0; at < events.length; at += 1000) {
      await call(run, 'POST', '/v1/events', { events: events.slice(at, at + 1000) });
    }
  } finally {
    await run.stop();
  }
  const copies = Math.ceil(total / SEED_EVENTS) - 1;
  if (copies > 0) {
    await db.withRaw(async (raw) => {
      const columns = (
        await raw.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = 'events' AND column_name NOT IN ('seq')
            ORDER BY ordinal_position`,
        )
      ).map((c) => c.column_name);
      const list = columns.map((c) => `"${c}"`).join(', ');
      const select = columns.map((c) => (c === 'id' ? `e.id || '-c' || g` : `e."${c}"`)).join(', ');
      await raw.query(
        `INSERT INTO events (${list})
         SELECT ${select} FROM events e CROSS JOIN generate_series(1, $2::int) AS g WHERE e.org_id = $1`,
        [orgId, copies],
      );
    });
  }
  return orgId;
}

/** Reads one export to the end; answers rows, seconds and the peak RSS gained meanwhile (bytes). */
async function readExport(run: RunningTally, orgId: string, format: string) {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  try {
    const res = await fetch(`${run.url}/v1/orgs/${orgId}/usage/export?format=${format}&range=30d`, {
      headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}` },
    });
    if (!res.ok || !res.body) throw new Error(`export ${format}: ${res.status} ${await res.text()}`);
    let lines = 0;
    for await (const chunk of res.body) for (const byte of chunk as Uint8Array) if (byte === 10) lines++;
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, process.memoryUsage().rss);
    return { rows: format === 'csv' ? lines - 1 : lines, seconds, gained: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

export const exportBench: BenchModule = {
  name: 'export',
  description:
    'Usage export read to the end over HTTP (`GET /v1/orgs/{org}/usage/export?format=csv|jsonl`) for one org holding all the rows: 10 000 realistic events sent through `POST /v1/events`, copied in SQL with new ids up to the full count. Rows per second, and the peak resident memory the process (Tally and the reading client share it) gained during the export. Baseline: the same rows written by one raw `COPY (SELECT * FROM events WHERE org_id = ...) TO STDOUT`; ratio = Tally / COPY. Median of 3 runs.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    for (const kind of options.databases) {
      const total = options.quick ? 20_000 : kind === 'server' ? 1_000_000 : 200_000;
      const db = await openBenchDatabase(kind, options.serverUrl);
      try {
        options.log(`  export on ${db.label}: filling one org with ${total} events`);
        const orgId = await fillOrg(db, total);
        const run = await db.startTally();
        const figures: Record<string, { rowsPerSecond: number[]; gainedMiB: number[] }> = {};
        try {
          for (const format of FORMATS) {
            figures[format] = { rowsPerSecond: [], gainedMiB: [] };
            for (let i = 0; i < RUNS; i++) {
              const out = await readExport(run, orgId, format);
              if (out.rows !== total)
                throw new Error(`export ${format} gave ${out.rows} rows, expected ${total}`);
              figures[format].rowsPerSecond.push(Math.round(out.rows / out.seconds));
              figures[format].gainedMiB.push(Math.round(out.gained / 2 ** 20));
              options.log(
                `    ${format} run ${i + 1}: ${fmt(out.rows / out.seconds)} rows/s, +${fmt(out.gained / 2 ** 20)} MiB`,
              );
            }
          }
        } finally {
          await run.stop();
        }
        const copyRates: number[] = [];
        await db.withRaw(async (raw) => {
          for (let i = 0; i < RUNS; i++) {
            const started = performance.now();
            const out = await raw.copyOut(`SELECT * FROM events WHERE org_id = '${orgId}'`);
            const seconds = (performance.now() - started) / 1000;
            let rows = 0;
            for (const byte of out) if (byte === 10) rows++;
            copyRates.push(Math.round(rows / seconds));
          }
        });
        for (const format of FORMATS) {
          const f = figures[format]!;
          measurements.push({
            benchmark: `export ${format}, ${fmt(total)} rows over HTTP`,
            database: db.label,
            unit: 'rows/s',
            runs: f.rowsPerSecond,
            better: 'higher',
            baseline: { label: 'COPY TO rows/s', runs: copyRates },
          });
          measurements.push({
            benchmark: `export ${format}, peak memory gained`,
            database: db.label,
            unit: 'MiB',
            runs: f.gainedMiB,
            better: 'lower',
          });
        }
        lines.push(
          `${db.label}: ${fmt(total)} rows; CSV median ${fmt(median(figures.csv!.rowsPerSecond))} rows/s, JSON Lines ${fmt(median(figures.jsonl!.rowsPerSecond))} rows/s; raw COPY ${fmt(median(copyRates))} rows/s.`,
        );
      } finally {
        await db.dispose();
      }
    }
    return { measurements, sections: [{ title: 'Export runs', lines }] };
  },
};
