/**
 * Usage dashboards on a large org: summary, time series, breakdowns and events-log pages of one org
 * with 1 million events in 30 days (beside 99 other orgs sharing the tables on the server), each
 * answered over HTTP by a running Tally, beside the same answer computed naively over raw events.
 *
 * How the data set is made (ingesting a million events through the API would take most of an
 * hour on a busy 2-core machine): events are generated in SQL (`INSERT ... SELECT generate_series`,
 * seeded, in time order), then every rollup is backfilled from them with ONE statement per table
 * (usage_hourly from events, the narrow ones from it as migration 0005 does), exactly the sums the ingest path
 * (`addToRollup` in src/services/events/recordEvents.ts) keeps; test/usageRollups.test.ts checks
 * that ingest and these sums agree. Before timing, the bench checks the rollups against raw events.
 */
import { decimalUnits } from '../src/domain/money.ts';
import { encodeCursor } from '../src/services/pagination.ts';
import {
  BENCH_OPERATOR_KEY,
  type BenchDatabase,
  type DatabaseKind,
  openBenchDatabase,
  type RunningTally,
} from './support/databases.ts';
import { fmt, median } from './support/stats.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement, Section } from './types.ts';

const SIZES = {
  full: {
    server: { events: 1_000_000, others: 99, otherEvents: 1_000_000, deepPage: 10_000 },
    embedded: { events: 1_000_000, others: 0, otherEvents: 0, deepPage: 10_000 },
    reps: 20,
    naiveReps: 5,
  },
  quick: {
    server: { events: 30_000, others: 9, otherEvents: 20_000, deepPage: 200 },
    embedded: { events: 30_000, others: 0, otherEvents: 0, deepPage: 200 },
    reps: 6,
    naiveReps: 3,
  },
} as const;
const ROUNDS = 3;
const PAGE = 50;
const DAYS = 30;
const ZONE = 'Europe/Berlin';
const TARGET: Record<DatabaseKind, { dashboard: number; page: number }> = {
  server: { dashboard: 50, page: 10 },
  embedded: { dashboard: 300, page: 300 },
};

async function call(run: RunningTally, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(run.url + path, {
    method,
    headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((error: Error) => {
    // fetch hides why it failed (refused, reset, timed out) in `cause`.
    throw new Error(
      `${method} ${path}: ${error.message} (${String((error.cause as Error)?.message ?? error.cause)})`,
    );
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer).slice(0, 300)}`);
  return answer;
}

/**
 * `count` events of `orgs` over the last DAYS days, in time order: 250 members (a few heavy, a long
 * tail), 6 features, 9 models of 3 providers, 7 surfaces, 12 workspaces in 3 groups, projects on 40 %.
 * Credits are per-model micro-credits per token; cost = credits x 0.01 (the default credit value).
 */
function generateSql(prefix: string): string {
  return `
    WITH x AS (
      SELECT g, ($1::text[])[1 + floor(random() * cardinality($1::text[]))::int] AS org_id,
             floor(random() ^ 2 * 250)::int AS m, floor(random() * 6)::int AS f, floor(random() * 9)::int AS mo,
             floor(random() * 7)::int AS s, random() AS pr,
             now() - interval '1 minute' - random() * interval '${DAYS} days' AS at,
             200 + floor(random() ^ 3 * 60000)::bigint AS inp, 20 + floor(random() ^ 2 * 4000)::bigint AS outp
        FROM generate_series(1, $2::int) AS g
    ), y AS (
      SELECT x.*, (ARRAY['openai','openai','openai','openai','anthropic','anthropic','anthropic','google','google'])[mo + 1] AS provider,
             (ARRAY['gpt-4o','gpt-4o-mini','gpt-4.1-mini','gpt-5-mini','claude-sonnet-4-5','claude-haiku-4-5',
                    'claude-opus-4-1','gemini-2.5-flash','gemini-2.5-pro'])[mo + 1] AS model,
             inp * (ARRAY[250, 15, 40, 25, 300, 100, 1500, 30, 125])[mo + 1] AS in_credits,
             outp * (ARRAY[1000, 60, 160, 200, 1500, 500, 7500, 250, 1000])[mo + 1] AS out_credits
        FROM x
    )
    INSERT INTO events (org_id, id, member_id, api_key_id, feature, provider, model, surface, workspace,
      workspace_group, project, conversation_id, message_id, occurred_at, input_tokens, output_tokens,
      usage, credits, cost, currency, provider_cost_usd, components, pricing, content_hash)
    SELECT org_id, '${prefix}' || g, 'mem_b' || m, NULL,
           (ARRAY['chat','summarize','search','agent','autocomplete','translate'])[f + 1], provider, model,
           (ARRAY['web','web','web','api','cli','mobile','slack'])[s + 1], 'ws_' || (m % 12),
           'group_' || (m % 12 % 3), CASE WHEN pr < 0.4 THEN 'proj_' || (m % 12) || '_' || (m % 4) ELSE '' END,
           'conv_' || m || '_' || (g % 40), 'msg_' || g, at, inp, outp,
           jsonb_build_object('input_tokens', inp, 'output_tokens', outp),
           in_credits + out_credits, (in_credits + out_credits) * 0.01 / 1000000, 'EUR',
           round((in_credits + out_credits) * 0.000000007, 10),
           jsonb_build_array(
             jsonb_build_object('component', 'input', 'quantity', inp::text,
               'credits', (in_credits / 1000000.0)::text, 'provider_cost_usd', round(in_credits * 0.000000007, 10)::text),
             jsonb_build_object('component', 'output', 'quantity', outp::text,
               'credits', (out_credits / 1000000.0)::text, 'provider_cost_usd', round(out_credits * 0.000000007, 10)::text)),
           jsonb_build_object('credit_value', '0.01', 'billing_mode', 'credits'), md5(g::text)
      FROM y ORDER BY at`;
}

/** The rollups of every org, from raw events, one statement per table (the sums addToRollup keeps). */
const BACKFILL = [
  `INSERT INTO usage_hourly (org_id, bucket, member_id, feature, provider, model, surface, workspace,
     workspace_group, project, api_key_id, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens,
     cache_read_tokens, cache_write_tokens)
   SELECT org_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', coalesce(member_id, ''),
          feature, provider, model, surface, workspace, workspace_group, project, coalesce(api_key_id, ''),
          count(*), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens), sum(output_tokens),
          sum(cache_read_tokens), sum(cache_write_tokens)
     FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11`,
  `INSERT INTO usage_hourly_total (org_id, bucket, calls, credits, cost, provider_cost_usd, input_tokens,
     output_tokens, cache_read_tokens, cache_write_tokens)
   SELECT org_id, bucket, sum(calls), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens),
          sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens)
     FROM usage_hourly GROUP BY 1, 2`,
  `INSERT INTO usage_daily_dim (org_id, dimension, bucket, day_end, key, calls, credits, cost, provider_cost_usd,
     input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
   SELECT h.org_id, d.dimension, l.day_start, l.day_end, d.key, sum(h.calls), sum(h.credits), sum(h.cost),
          sum(h.provider_cost_usd), sum(h.input_tokens), sum(h.output_tokens), sum(h.cache_read_tokens),
          sum(h.cache_write_tokens)
     FROM usage_hourly h
     JOIN orgs o ON o.id = h.org_id
    CROSS JOIN LATERAL usage_local_day(h.bucket, o.timezone) AS l
    CROSS JOIN LATERAL (VALUES
      ('all', ''), ('member', h.member_id), ('feature', h.feature), ('model', h.provider || '/' || h.model),
      ('provider', h.provider), ('workspace', h.workspace), ('workspace_group', h.workspace_group),
      ('surface', h.surface), ('project', h.project), ('api_key', h.api_key_id)
    ) AS d (dimension, key)
    GROUP BY 1, 2, 3, 4, 5`,
];

interface DataSet {
  orgId: string;
  events: number;
  seconds: { events: number; rollups: number };
  rows: { wide: number; hourlyTotal: number; dailyDim: number };
}

export async function buildDataSet(
  tally: RunningTally,
  size: { events: number; others: number; otherEvents: number },
  log: (line: string) => void,
): Promise<DataSet> {
  const org = await call(tally, 'POST', '/v1/orgs', {
    name: 'Bench large org',
    currency: 'EUR',
    timezone: ZONE,
  });
  const others: string[] = [];
  for (let i = 0; i < size.others; i++) {
    const o = await call(tally, 'POST', '/v1/orgs', {
      name: `Bench org ${i}`,
      currency: i % 2 ? 'USD' : 'EUR',
      timezone: i % 2 ? 'America/New_York' : ZONE,
    });
    others.push(o.id);
  }
  const db = tally.tally.db;
  const all = [org.id, ...others];
  await db.query(
    `INSERT INTO members (org_id, id, external_id, name, email, role, status)
     SELECT o, 'mem_b' || i, 'user_' || i, 'User ' || i, 'user' || i || '@example.com', 'member',
            CASE WHEN i % 50 = 49 THEN 'removed' ELSE 'active' END
       FROM unnest($1::text[]) AS o, generate_series(0, 249) AS i`,
    [all],
  );
  let started = performance.now();
  await db.query('SELECT setseed(0.42)');
  // In slices, so the background orgs' events interleave with the large org's in time order.
  const slices = 10;
  for (let s = 0; s < slices; s++) {
    await db.query(generateSql(`ev_${s}_`), [[org.id], Math.round(size.events / slices)]);
    if (others.length > 0)
      await db.query(generateSql(`bg_${s}_`), [others, Math.round(size.otherEvents / slices)]);
    log(`  events ${s + 1}/${slices}`);
  }
  const eventSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  for (const sql of BACKFILL) await db.query(sql);
  await db.exec('ANALYZE');
  const rollupSeconds = (performance.now() - started) / 1000;
  const [check] = await db.query<{ events: string; wide: string; hourly: string; daily: string }>(
    `SELECT (SELECT count(*) FROM events WHERE org_id = $1)::text AS events,
            (SELECT sum(calls) FROM usage_hourly WHERE org_id = $1)::text AS wide,
            (SELECT sum(calls) FROM usage_hourly_total WHERE org_id = $1)::text AS hourly,
            (SELECT sum(calls) FROM usage_daily_dim WHERE org_id = $1 AND dimension = 'all')::text AS daily`,
    [org.id],
  );
  if (new Set([check!.events, check!.wide, check!.hourly, check!.daily]).size !== 1) {
    throw new Error(`rollups disagree with events: ${JSON.stringify(check)}`);
  }
  const [rows] = await db.query<{ wide: number; hourly: number; daily: number }>(
    `SELECT (SELECT count(*) FROM usage_hourly WHERE org_id = $1)::int AS wide,
            (SELECT count(*) FROM usage_hourly_total WHERE org_id = $1)::int AS hourly,
            (SELECT count(*) FROM usage_daily_dim WHERE org_id = $1)::int AS daily`,
    [org.id],
  );
  return {
    orgId: org.id,
    events: Number(check!.events),
    seconds: { events: eventSeconds, rollups: rollupSeconds },
    rows: { wide: rows!.wide, hourlyTotal: rows!.hourly, dailyDim: rows!.daily },
  };
}

interface Probe {
  name: string;
  kind: 'dashboard' | 'page';
  path: string;
  /** The same answer over raw events (`null`: there is no naive form beyond the query itself). */
  naive: (answer: any) => { sql: string; params: unknown[] };
}

const SUMS_RAW = `sum(credits) AS credits, sum(cost) AS cost, sum(provider_cost_usd) AS pcost, count(*) AS calls,
  sum(input_tokens) AS input, sum(output_tokens) AS output, sum(cache_read_tokens) AS cr, sum(cache_write_tokens) AS cw`;

function probes(orgId: string, deepPage: number, deepCursor: string): Probe[] {
  const base = `/v1/orgs/${orgId}/usage`;
  const dayAgo = new Date(Date.now() - 3 * 86_400_000).toLocaleDateString('en-CA', { timeZone: ZONE });
  const where = 'org_id = $1 AND occurred_at >= $2 AND occurred_at < $3';
  const rangeParams = (a: any) => [orgId, a.range.start, a.range.end];
  const summary = (a: any) => ({
    sql: `SELECT * FROM
            (SELECT ${SUMS_RAW}, count(DISTINCT member_id) AS members, count(DISTINCT feature) AS features,
                    count(DISTINCT (provider, model)) AS tiers FROM events WHERE ${where}) cur,
            (SELECT ${SUMS_RAW.replace(/ AS (\w+)/g, ' AS prev_$1')}, count(DISTINCT member_id) AS prev_members
               FROM events WHERE org_id = $1 AND occurred_at >= $4 AND occurred_at < $5) prev`,
    params: [...rangeParams(a), a.range.previous_start, a.range.previous_end],
  });
  const breakdown =
    (key: string, extra = '') =>
    (a: any) => ({
      sql: `SELECT ${key} AS key, ${SUMS_RAW}, sum(sum(credits)) OVER () AS total, count(*) OVER () AS groups
            FROM events WHERE ${where} ${extra} GROUP BY 1 ORDER BY sum(credits) DESC, 1 LIMIT 6`,
      params: rangeParams(a),
    });
  const series = (unit: string, key: string) => (a: any) => ({
    sql: `SELECT date_trunc('${unit}', occurred_at AT TIME ZONE '${ZONE}') AS b, ${key} AS key, ${SUMS_RAW}
            FROM events WHERE ${where} GROUP BY 1, 2`,
    params: rangeParams(a),
  });
  const page = (offset: number) => (a: any) => ({
    sql: `SELECT e.*, m.name, m.email FROM events e LEFT JOIN members m ON m.org_id = e.org_id AND m.id = e.member_id
           WHERE e.org_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
           ORDER BY e.occurred_at DESC, e.seq DESC OFFSET ${offset} LIMIT ${PAGE + 1}`,
    params: rangeParams(a),
  });
  return [
    { name: 'summary 30d', kind: 'dashboard', path: `${base}/summary?range=30d`, naive: summary },
    { name: 'summary mtd', kind: 'dashboard', path: `${base}/summary?range=mtd`, naive: summary },
    {
      name: 'timeseries 30d weekly',
      kind: 'dashboard',
      path: `${base}/timeseries?range=30d`,
      naive: series('week', "''"),
    },
    {
      name: 'timeseries 30d daily cumulative',
      kind: 'dashboard',
      path: `${base}/timeseries?range=30d&granularity=day&cumulative=true`,
      naive: series('day', "''"),
    },
    {
      name: 'timeseries 7d daily by surface',
      kind: 'dashboard',
      path: `${base}/timeseries?range=7d&split=surface`,
      naive: series('day', 'surface'),
    },
    {
      name: 'timeseries 1d hourly by model',
      kind: 'dashboard',
      path: `${base}/timeseries?range=1d&split=model`,
      naive: series('hour', "provider || '/' || model"),
    },
    {
      name: 'timeseries 30d weekly by member',
      kind: 'dashboard',
      path: `${base}/timeseries?range=30d&split=member`,
      naive: series('week', 'member_id'),
    },
    {
      name: 'breakdown 30d by feature',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=feature`,
      naive: breakdown('feature'),
    },
    {
      name: 'breakdown 30d by member',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=member`,
      naive: breakdown('member_id'),
    },
    {
      name: 'breakdown 30d by model',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=model`,
      naive: breakdown("provider || '/' || model"),
    },
    {
      name: 'breakdown 30d by workspace, one member (wide rollup)',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=workspace&member=user_3`,
      naive: breakdown('workspace', `AND member_id = 'mem_b3'`),
    },
    {
      name: 'daily totals of this month',
      kind: 'dashboard',
      path: `${base}/daily`,
      naive: (a: any) => ({
        sql: `SELECT date_trunc('day', occurred_at AT TIME ZONE '${ZONE}') AS d, ${SUMS_RAW} FROM events
               WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1`,
        params: [orgId, a.data[0].start, a.data[a.data.length - 1].end],
      }),
    },
    {
      name: 'items of one day',
      kind: 'dashboard',
      path: `${base}/days/${dayAgo}`,
      naive: (a: any) => ({
        sql: `SELECT e.feature, e.provider, e.model, c->>'component', sum((c->>'quantity')::numeric),
                     sum((c->>'credits')::numeric) FROM events e CROSS JOIN LATERAL jsonb_array_elements(e.components) c
               WHERE e.org_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3 GROUP BY 1, 2, 3, 4`,
        params: [orgId, a.start, a.end],
      }),
    },
    {
      name: 'patterns 30d',
      kind: 'dashboard',
      path: `${base}/patterns?range=30d`,
      naive: (a: any) => ({
        sql: `SELECT extract(hour FROM occurred_at AT TIME ZONE '${ZONE}'), extract(isodow FROM occurred_at AT TIME ZONE '${ZONE}'),
                     ${SUMS_RAW} FROM events WHERE ${where} GROUP BY 1, 2`,
        params: rangeParams(a),
      }),
    },
    {
      name: 'forecast',
      kind: 'dashboard',
      path: `${base}/forecast`,
      naive: () => ({
        sql: `SELECT date_trunc('day', occurred_at AT TIME ZONE '${ZONE}'), ${SUMS_RAW} FROM events
               WHERE org_id = $1 AND occurred_at >= now() - interval '57 days' GROUP BY 1`,
        params: [orgId],
      }),
    },
    {
      name: 'anomalies (7 days, org/member/feature)',
      kind: 'dashboard',
      path: `${base}/anomalies`,
      naive: () => ({
        sql: `SELECT date_trunc('day', occurred_at AT TIME ZONE '${ZONE}'), member_id, feature, sum(credits) FROM events
               WHERE org_id = $1 AND occurred_at >= now() - interval '35 days' GROUP BY GROUPING SETS ((1), (1, 2), (1, 3))`,
        params: [orgId],
      }),
    },
    { name: 'events page 1', kind: 'page', path: `${base}/events?range=30d`, naive: page(0) },
    {
      name: `events page ${deepPage}`,
      kind: 'page',
      path: `${base}/events?range=30d&cursor=${deepCursor}`,
      naive: page((deepPage - 1) * PAGE),
    },
  ];
}

const p95 = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)] ?? Number.NaN;
};

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const started = performance.now();
  const result = await fn();
  return [performance.now() - started, result];
}

interface ProbeFigures {
  probe: Probe;
  tally: number[][];
  naive: number[][];
}

async function measure(
  database: BenchDatabase,
  kind: DatabaseKind,
  options: BenchOptions,
): Promise<{ figures: ProbeFigures[]; data: DataSet; deepPage: number }> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const size = sizes[kind];
  const tally = await database.startTally();
  try {
    options.log(`  ${database.label}: generating ${size.events} + ${size.otherEvents} events`);
    const data = await buildDataSet(tally, size, options.log);
    options.log(
      `  ${database.label}: events in ${data.seconds.events.toFixed(1)} s, rollups in ${data.seconds.rollups.toFixed(1)} s`,
    );
    const summary = await call(tally, 'GET', `/v1/orgs/${data.orgId}/usage/summary?range=30d`);
    const [deep] = await tally.tally.db.query<{ at: string; seq: string }>(
      `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, seq::text AS seq
         FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3
        ORDER BY occurred_at DESC, seq DESC OFFSET $4 LIMIT 1`,
      [data.orgId, summary.range.start, summary.range.end, (size.deepPage - 1) * PAGE - 1],
    );
    if (!deep) throw new Error('the data set is too small for the deep page');
    const list = probes(data.orgId, size.deepPage, encodeCursor([deep.at, deep.seq]));
    const figures: ProbeFigures[] = list.map((probe) => ({ probe, tally: [], naive: [] }));
    // Warm-up, and the naive answer checked against Tally's where both are totals.
    for (const f of figures) {
      const answer = await call(tally, 'GET', f.probe.path);
      const naive = f.probe.naive(answer);
      const rows = await tally.tally.db.query<Record<string, unknown>>(naive.sql, naive.params);
      if (f.probe.name.startsWith('summary')) {
        const raw = BigInt(String(rows[0]!.credits ?? 0));
        if (decimalUnits(answer.credits, 6) !== raw) {
          throw new Error(
            `${f.probe.name}: Tally says ${answer.credits} credits, raw events ${raw} micro-credits`,
          );
        }
      }
      if (f.probe.kind === 'page' && answer.data.length !== PAGE)
        throw new Error(`${f.probe.name}: short page`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of figures) {
        const ms: number[] = [];
        for (let i = 0; i < sizes.reps; i++)
          ms.push((await timed(() => call(tally, 'GET', f.probe.path)))[0]);
        f.tally.push(ms);
        const answer = await call(tally, 'GET', f.probe.path);
        const naive = f.probe.naive(answer);
        const raw: number[] = [];
        for (let i = 0; i < sizes.naiveReps; i++)
          raw.push((await timed(() => tally.tally.db.query(naive.sql, naive.params)))[0]);
        f.naive.push(raw);
      }
      options.log(`  ${database.label}: round ${round + 1}/${ROUNDS} done`);
    }
    return { figures, data, deepPage: size.deepPage };
  } finally {
    await tally.stop();
  }
}

export const usage: BenchModule = {
  name: 'usage',
  description:
    'Usage dashboards of one large org (Europe/Berlin): 1 million events in the last 30 days (250 members, 6 features, ' +
    '9 models, 7 surfaces, 12 workspaces), beside 99 other orgs with another million events on the server (PGlite: the ' +
    'large org alone). Events are generated in SQL and the rollups backfilled from them with one statement per table ' +
    '(the sums the ingest path keeps; ingesting a million events over HTTP would take most of an hour here). Each answer ' +
    'is fetched over HTTP from a running Tally with the operator key: p95 of 20 requests per round, median of 3 rounds ' +
    '(quick: 30 000 events, 6 requests). Baseline: the same answer computed naively over raw events (`GROUP BY` on ' +
    '`events`; for events pages, `OFFSET` pagination at the same depth), p95 of 5 runs per round; ratio = Tally / naive.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const sections: Section[] = [];
    for (const kind of options.databases) {
      const database = await openBenchDatabase(kind, options.serverUrl);
      try {
        const { figures, data, deepPage } = await measure(database, kind, options);
        const lines = [
          `Large org: ${fmt(data.events)} events in ${DAYS} days; generated in ${data.seconds.events.toFixed(0)} s, ` +
            `rollups backfilled in ${data.seconds.rollups.toFixed(0)} s. Its rollup rows: wide \`usage_hourly\` ` +
            `${fmt(data.rows.wide)} (${(data.rows.wide / data.events).toFixed(2)} per event), \`usage_hourly_total\` ` +
            `${fmt(data.rows.hourlyTotal)}, \`usage_daily_dim\` ${fmt(data.rows.dailyDim)}.`,
          '',
          '| answer | Tally p50 ms | Tally p95 ms | naive p50 ms | naive p95 ms | naive / Tally (p95) |',
          '|---|---|---|---|---|---|',
        ];
        for (const f of figures) {
          const tallyP95 = median(f.tally.map(p95));
          const naiveP95 = median(f.naive.map(p95));
          lines.push(
            `| ${f.probe.name} | ${fmt(median(f.tally.flat()))} | ${fmt(tallyP95)} | ${fmt(median(f.naive.flat()))} | ${fmt(
              naiveP95,
            )} | ${(naiveP95 / tallyP95).toFixed(1)} x |`,
          );
          measurements.push({
            benchmark: `usage: ${f.probe.name}`,
            database: database.label,
            unit: 'ms p95',
            better: 'lower',
            runs: f.tally.map(p95),
            baseline: { label: 'naive ms p95', runs: f.naive.map(p95) },
            target: TARGET[kind][f.probe.kind],
          });
        }
        lines.push(
          '',
          `The deep page is page ${deepPage} (${fmt((deepPage - 1) * PAGE)} rows in) through the keyset cursor; its ` +
            'naive form skips the rows with OFFSET. "One member" filters on another dimension than the one broken down, ' +
            'so it reads the wide rollup; every other answer reads the narrow ones.',
        );
        sections.push({ title: `Usage dashboards on ${database.label}`, lines });
      } finally {
        await database.dispose();
      }
    }
    return { measurements, sections };
  },
};
