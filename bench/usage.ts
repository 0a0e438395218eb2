/**
 * Usage dashboards on a large org: summary, time series, breakdowns and events-log pages of one org
 * with 1 million events in 30 days (on the server beside 999 other orgs with 9 million more: the
 * issue's 10 million over 1 000 orgs), each answered over HTTP by a running Tally, beside the same
 * answer computed naively over raw events.
 *
 * How the data set is made (ingesting millions of events through the API would take hours on a
 * busy 2-core machine): events are generated in SQL (`INSERT ... SELECT generate_series`, seeded,
 * in time order), then every rollup is backfilled from them with ONE statement per table, the sums
 * the ingest path (`addToRollup` in src/services/events/recordEvents.ts) keeps. The bench proves
 * that on a sample: 2 000 varied events of one more org go through POST /v1/events, and the
 * backfill's rows for that org must equal the rows ingest kept, table by table. Before timing, it
 * also checks the large org's rollups against its raw events.
 */
import http from 'node:http';
import { decimalUnits } from '../src/domain/money.ts';
import { buildHourlyDims } from '../src/services/maintenance/buildHourlyDims.ts';
import { buildUsagePairs } from '../src/services/maintenance/buildUsagePairs.ts';
import { encodeCursor } from '../src/services/pagination.ts';
import {
  BENCH_OPERATOR_KEY,
  type BenchDatabase,
  type DatabaseKind,
  openBenchDatabase,
  type RunningTally,
  serverDatabase,
} from './support/databases.ts';
import { forkGenerator, type LoadGenerator, serveGeneratorJobs } from './support/loadGenerator.ts';
import { fmt, median } from './support/stats.ts';
import { startTallyProcesses } from './support/tallyProcess.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement, Section } from './types.ts';

const SIZES = {
  full: {
    // The issue's data set: 10 million events over 1 000 orgs, the largest with 1 million in a month.
    server: { events: 1_000_000, others: 999, otherEvents: 9_000_000, deepPage: 10_000 },
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
/** BENCH_USAGE_EVENTS / BENCH_USAGE_OTHERS / BENCH_USAGE_OTHER_EVENTS: other sizes (a mid-size run). */
function sizeOf(kind: DatabaseKind, quick: boolean) {
  const size: { events: number; others: number; otherEvents: number; deepPage: number } = {
    ...(quick ? SIZES.quick : SIZES.full)[kind],
  };
  const env = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
  size.events = env('BENCH_USAGE_EVENTS') ?? size.events;
  if (kind === 'server') {
    size.others = env('BENCH_USAGE_OTHERS') ?? size.others;
    size.otherEvents = env('BENCH_USAGE_OTHER_EVENTS') ?? size.otherEvents;
  }
  return size;
}
const ROUNDS = 3;
const PAGE = 50;
const DAYS = 30;
const ZONE = 'Europe/Berlin';
const TARGET: Record<DatabaseKind, { dashboard: number; page: number }> = {
  server: { dashboard: 50, page: 10 },
  embedded: { dashboard: 300, page: 300 },
};
/** Events sent through POST /v1/events to check the SQL backfill against what ingest keeps. */
const CHECK_EVENTS = 2_000;

/**
 * Requests go through an agent of our own, replaced (its idle sockets closed) whenever the process
 * did something long in between: PGlite runs in this process, so generating data or a naive query
 * blocks the event loop for seconds, past the server's keep-alive timeout, and the first request
 * after it would reuse a socket the server is closing at the same instant (read ECONNRESET).
 */
let agent = new http.Agent({ keepAlive: true });
function freshConnections(): void {
  agent.destroy();
  agent = new http.Agent({ keepAlive: true });
}

async function call(run: { url: string }, method: string, path: string, body?: unknown): Promise<any> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      run.url + path,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${BENCH_OPERATOR_KEY}`,
          'content-type': 'application/json',
          ...(payload === undefined ? {} : { 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', (error) => reject(new Error(`${method} ${path}: ${error.message}`)));
    req.end(payload);
  });
  const answer = JSON.parse(text);
  if (status >= 400) throw new Error(`${method} ${path}: ${status} ${text.slice(0, 300)}`);
  return answer;
}

const FEATURES = ['chat', 'summarize', 'search', 'agent', 'autocomplete', 'translate'];
const MODELS: [string, string, number, number][] = [
  // provider, model, micro-credits per input token, per output token
  ['openai', 'gpt-4o', 250, 1000],
  ['openai', 'gpt-4o-mini', 15, 60],
  ['openai', 'gpt-4.1-mini', 40, 160],
  ['openai', 'gpt-5-mini', 25, 200],
  ['anthropic', 'claude-sonnet-4-5', 300, 1500],
  ['anthropic', 'claude-haiku-4-5', 100, 500],
  ['anthropic', 'claude-opus-4-1', 1500, 7500],
  ['google', 'gemini-2.5-flash', 30, 250],
  ['google', 'gemini-2.5-pro', 125, 1000],
];
const SURFACES = ['web', 'web', 'web', 'api', 'cli', 'mobile', 'slack', 'gmail'];
const TOOLS = ['web_search', 'code', 'docs', 'image'];
const sqlArray = (values: (string | number)[]) =>
  `ARRAY[${values.map((v) => (typeof v === 'number' ? String(v) : `'${v}'`)).join(', ')}]`;

/**
 * `$2` events of the orgs `$1` over the last DAYS days, in time order: 250 members (a few heavy, a
 * long tail), 6 features, 9 models of 3 providers, 8 surfaces (2 integrations), 12 workspaces in 3
 * groups, projects on 40 %, a tool on 30 % (metadata.tool). Credits are per-model micro-credits per
 * token; cost = credits x 0.01 (the default credit value).
 */
function generateSql(prefix: string): string {
  return `
    WITH x AS (
      SELECT g, ($1::text[])[1 + floor(random() * cardinality($1::text[]))::int] AS org_id,
             floor(random() ^ 2 * 250)::int AS m, floor(random() * 6)::int AS f, floor(random() * 9)::int AS mo,
             floor(random() * ${SURFACES.length})::int AS s, random() AS pr, random() AS tl,
             now() - interval '1 minute' - random() * interval '${DAYS} days' AS at,
             200 + floor(random() ^ 3 * 60000)::bigint AS inp, 20 + floor(random() ^ 2 * 4000)::bigint AS outp
        FROM generate_series(1, $2::int) AS g
    ), y AS (
      SELECT x.*, (${sqlArray(MODELS.map((m) => m[0]))})[mo + 1] AS provider,
             (${sqlArray(MODELS.map((m) => m[1]))})[mo + 1] AS model,
             inp * (${sqlArray(MODELS.map((m) => m[2]))})[mo + 1] AS in_credits,
             outp * (${sqlArray(MODELS.map((m) => m[3]))})[mo + 1] AS out_credits
        FROM x
    )
    INSERT INTO events (org_id, id, member_id, api_key_id, feature, provider, model, surface, workspace,
      workspace_group, project, conversation_id, message_id, occurred_at, input_tokens, output_tokens,
      usage, credits, cost, currency, provider_cost_usd, components, pricing, content_hash, metadata)
    SELECT org_id, '${prefix}' || lpad((row_number() OVER (ORDER BY at))::text, 9, '0'), 'mem_b' || m, NULL,
           (${sqlArray(FEATURES)})[f + 1], provider, model,
           (${sqlArray(SURFACES)})[s + 1], 'ws_' || (m % 12),
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
           jsonb_build_object('credit_value', '0.01', 'billing_mode', 'credits'), md5(g::text),
           CASE WHEN tl < 0.3 THEN jsonb_build_object('tool', (${sqlArray(TOOLS)})[1 + floor(tl * 40)::int % ${TOOLS.length}]) END
      FROM y ORDER BY at`;
}

/**
 * The rollup rows of the orgs that `orgs` (a condition on an org id column) selects, from their raw events:
 * one SELECT per table giving exactly the rows the ingest path (src/services/events/recordEvents.ts)
 * keeps: the wide hourly rows, the hourly org totals, and the
 * narrow daily rows of every dimension (migrations 0005 and 0011: 'integration' and 'tool' only for
 * events naming one) on the org's local days. The daily rows are summed from the wide ones (and,
 * for integration and tool, from events summed per hour first), each (org, hour)'s local day looked
 * up once.
 */
function rollupSelects(
  orgs: (column: string) => string,
): Record<'usage_hourly' | 'usage_hourly_total' | 'usage_daily_dim', string> {
  const sums = `sum(calls), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens), sum(output_tokens),
    sum(cache_read_tokens), sum(cache_write_tokens)`;
  const hourOf = "date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'";
  const integration = "CASE WHEN e.surface NOT IN ('', 'web', 'cli', 'api', 'mobile') THEN e.surface END";
  const tool = `CASE WHEN jsonb_typeof(e.metadata -> 'tool') = 'string'
    THEN nullif(left(btrim(e.metadata ->> 'tool', E' \\t\\n\\r\\f' || chr(11)), 200), '') END`;
  // The dimensions every event has a key in (migration 0005), from the wide rows `h`.
  const dense = [
    ['member', 'h.member_id'],
    ['feature', 'h.feature'],
    ['model', "h.provider || '/' || h.model"],
    ['provider', 'h.provider'],
    ['workspace', 'h.workspace'],
    ['workspace_group', 'h.workspace_group'],
    ['surface', 'h.surface'],
    ['project', 'h.project'],
    ['api_key', 'h.api_key_id'],
  ];
  return {
    usage_hourly: `SELECT org_id, bucket, member_id, feature, provider, model, surface, workspace, workspace_group,
        project, api_key_id, ${sums}
        FROM (SELECT e.org_id, ${hourOf} AS bucket, coalesce(e.member_id, '') AS member_id, e.feature, e.provider,
                     e.model, e.surface, e.workspace, e.workspace_group, e.project,
                     coalesce(e.api_key_id, '') AS api_key_id, 1 AS calls, e.credits, e.cost, e.provider_cost_usd,
                     e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens
                FROM events e WHERE ${orgs('e.org_id')}) AS e
       GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11`,
    usage_hourly_total: `SELECT org_id, bucket, ${sums} FROM usage_hourly WHERE ${orgs('org_id')} GROUP BY 1, 2`,
    usage_daily_dim: `WITH day AS MATERIALIZED (
        SELECT t.org_id, t.bucket, l.day_start, l.day_end
          FROM usage_hourly_total t
          JOIN orgs o ON o.id = t.org_id
         CROSS JOIN LATERAL usage_local_day(t.bucket, o.timezone) AS l
         WHERE ${orgs('t.org_id')}
      ), dense AS (
        SELECT h.org_id, d.dimension, day.day_start, day.day_end, d.key, ${ROLLUP_SUMS.map((c) => `sum(h.${c}) AS ${c}`).join(', ')}
          FROM usage_hourly h
          JOIN day ON day.org_id = h.org_id AND day.bucket = h.bucket
         CROSS JOIN LATERAL (VALUES
           ('all', ''), ${dense.map(([name, key]) => `('${name}', ${key})`).join(', ')}
         ) AS d (dimension, key)
         WHERE ${orgs('h.org_id')}
         GROUP BY 1, 2, 3, 4, 5
      ), sparse AS (
        -- Integration and tool, only for the events that name one, summed per hour first.
        SELECT x.org_id, d.dimension, day.day_start, day.day_end, d.key, ${ROLLUP_SUMS.map((c) => `sum(x.${c}) AS ${c}`).join(', ')}
          FROM (SELECT e.org_id, ${hourOf} AS bucket, ${integration} AS integration, ${tool} AS tool,
                       count(*) AS calls, sum(e.credits) AS credits, sum(e.cost) AS cost,
                       sum(e.provider_cost_usd) AS provider_cost_usd, sum(e.input_tokens) AS input_tokens,
                       sum(e.output_tokens) AS output_tokens, sum(e.cache_read_tokens) AS cache_read_tokens,
                       sum(e.cache_write_tokens) AS cache_write_tokens
                  FROM events e WHERE ${orgs('e.org_id')}
                 GROUP BY 1, 2, 3, 4) AS x
          JOIN day ON day.org_id = x.org_id AND day.bucket = x.bucket
         CROSS JOIN LATERAL (VALUES ('integration', x.integration), ('tool', x.tool)) AS d (dimension, key)
         WHERE d.key IS NOT NULL
         GROUP BY 1, 2, 3, 4, 5
      )
      SELECT * FROM dense UNION ALL SELECT * FROM sparse`,
  };
}

const ROLLUP_SUMS = [
  'calls',
  'credits',
  'cost',
  'provider_cost_usd',
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
];
const ROLLUP_COLUMNS = {
  usage_hourly: `org_id, bucket, member_id, feature, provider, model, surface, workspace, workspace_group, project,
    api_key_id, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens`,
  usage_hourly_total: `org_id, bucket, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens,
    cache_read_tokens, cache_write_tokens`,
  usage_daily_dim: `org_id, dimension, bucket, day_end, key, calls, credits, cost, provider_cost_usd, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens`,
};
const ROLLUP_TABLES = ['usage_hourly', 'usage_hourly_total', 'usage_daily_dim'] as const;
/** Positions of each table's primary key among its backfill columns (usage_hourly's from_calls keeps its default: batch rows). */
const ROLLUP_KEYS = {
  usage_hourly: '1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11',
  usage_hourly_total: '1, 2',
  usage_daily_dim: '1, 2, 3, 4, 5',
};

/** Varied events for POST /v1/events (the ingest check): the bench's dimensions plus odd tools. */
function checkEvents(count: number) {
  return Array.from({ length: count }, (_, i) => {
    const [provider, model] = MODELS[(i * 7) % MODELS.length]!;
    const tool = [undefined, 'web_search', ' code ', 7, '', 'docs'][i % 6];
    return {
      id: `check-${i}`,
      member: `user_${(i * 13) % 250}`,
      feature: FEATURES[i % FEATURES.length]!,
      provider,
      model,
      occurred_at: new Date(Date.now() - 60_000 - ((i * 7_919) % (DAYS * 1440)) * 60_000).toISOString(),
      surface: SURFACES[(i * 3) % SURFACES.length]!,
      workspace: `ws_${i % 12}`,
      workspace_group: `group_${i % 3}`,
      ...(i % 5 < 2 ? { project: `proj_${i % 7}` } : {}),
      ...(tool !== undefined ? { metadata: { tool } } : {}),
      usage: { input_tokens: 200 + ((i * 37) % 9_000), output_tokens: 20 + ((i * 11) % 900) },
    };
  });
}

interface DataSet {
  orgId: string;
  events: number;
  orgs: number;
  allEvents: number;
  seconds: { orgs: number; events: number; rollups: number };
  rows: { wide: number; hourlyTotal: number; dailyDim: number };
}

export async function buildDataSet(
  tally: RunningTally,
  size: { events: number; others: number; otherEvents: number },
  log: (line: string) => void,
): Promise<DataSet> {
  let started = performance.now();
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
  const check = await call(tally, 'POST', '/v1/orgs', {
    name: 'Ingest check',
    currency: 'EUR',
    timezone: ZONE,
  });
  const db = tally.tally.db;
  const all = [org.id, ...others];
  await db.query(
    `INSERT INTO members (org_id, id, external_id, name, email, role, status)
     SELECT o, 'mem_b' || i, 'user_' || i, 'User ' || i, 'user' || i || '@example.com', 'member',
            CASE WHEN i % 50 = 49 THEN 'removed' ELSE 'active' END
       FROM unnest($1::text[]) AS o, generate_series(0, 249) AS i`,
    [all],
  );
  const orgSeconds = (performance.now() - started) / 1000;
  // The check org's events go through ingest, which keeps its rollups.
  const sample = checkEvents(CHECK_EVENTS);
  for (let i = 0; i < sample.length; i += 500) {
    const r = await call(tally, 'POST', '/v1/events', {
      events: sample.slice(i, i + 500).map((e) => ({ ...e, org_id: check.id })),
    });
    const refused = r.results.filter((x: { status: string }) => x.status !== 'accepted');
    if (refused.length > 0) throw new Error(`check events refused: ${JSON.stringify(refused[0])}`);
  }
  started = performance.now();
  await db.query('SELECT setseed(0.42)');
  // In slices of at most 500 000 rows, the background orgs' events interleaved with the large org's.
  const slices = Math.max(1, Math.ceil((size.events + size.otherEvents) / 500_000));
  for (let s = 0; s < slices; s++) {
    await db.query(generateSql(`ev_${s}_`), [[org.id], Math.round(size.events / slices)]);
    if (others.length > 0)
      await db.query(generateSql(`bg_${s}_`), [others, Math.round(size.otherEvents / slices)]);
    log(`  events ${s + 1}/${slices} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  const eventSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  // Every org but the check org, whose rollups ingest kept.
  const bulk = rollupSelects((column) => `${column} <> '${check.id}'`);
  for (const table of ROLLUP_TABLES) {
    // Room to hash the groups in memory instead of spilling sorts to disk.
    await db.transaction(async (tx) => {
      await tx.query("SET LOCAL work_mem = '512MB'");
      // In key order, so each index grows at its end instead of at random pages.
      await tx.query(
        `INSERT INTO ${table} (${ROLLUP_COLUMNS[table]}) SELECT * FROM (${bulk[table]}) AS r ORDER BY ${ROLLUP_KEYS[table]}`,
      );
    });
    log(`  ${table} backfilled (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  // What autovacuum does on a live server (it is off on this machine's): visibility maps set, so the
  // planner's probes of an index's end and index-only scans do not visit the heap row by row.
  await db.exec('VACUUM (ANALYZE)');
  const rollupSeconds = (performance.now() - started) / 1000;
  // The backfill's rows for the check org must be exactly those ingest kept.
  const own = rollupSelects((column) => `${column} = '${check.id}'`);
  for (const table of ROLLUP_TABLES) {
    const stored = `SELECT ${ROLLUP_COLUMNS[table]} FROM ${table} WHERE org_id = '${check.id}'`;
    const [diff] = await db.query<{ missing: string; extra: string; rows: string }>(
      `SELECT (SELECT count(*) FROM ((${own[table]}) EXCEPT (${stored})) AS a)::text AS missing,
              (SELECT count(*) FROM ((${stored}) EXCEPT (${own[table]})) AS b)::text AS extra,
              (SELECT count(*) FROM (${stored}) AS c)::text AS rows`,
    );
    if (diff!.missing !== '0' || diff!.extra !== '0' || diff!.rows === '0') {
      throw new Error(
        `${table}: the backfill differs from ingest for ${CHECK_EVENTS} events: ${JSON.stringify(diff)}`,
      );
    }
  }
  log(`  backfill checked against ingest on ${CHECK_EVENTS} events: identical rollup rows`);
  const [check_] = await db.query<{ events: string; wide: string; hourly: string; daily: string }>(
    `SELECT (SELECT count(*) FROM events WHERE org_id = $1)::text AS events,
            (SELECT sum(calls) FROM usage_hourly WHERE org_id = $1)::text AS wide,
            (SELECT sum(calls) FROM usage_hourly_total WHERE org_id = $1)::text AS hourly,
            (SELECT sum(calls) FROM usage_daily_dim WHERE org_id = $1 AND dimension = 'all')::text AS daily`,
    [org.id],
  );
  if (new Set([check_!.events, check_!.wide, check_!.hourly, check_!.daily]).size !== 1) {
    throw new Error(`rollups disagree with events: ${JSON.stringify(check_)}`);
  }
  const [rows] = await db.query<{ wide: number; hourly: number; daily: number; all: string }>(
    `SELECT (SELECT count(*) FROM usage_hourly WHERE org_id = $1)::int AS wide,
            (SELECT count(*) FROM usage_hourly_total WHERE org_id = $1)::int AS hourly,
            (SELECT count(*) FROM usage_daily_dim WHERE org_id = $1)::int AS daily,
            (SELECT sum(calls) FROM usage_hourly_total)::text AS all`,
    [org.id],
  );
  return {
    orgId: org.id,
    events: Number(check_!.events),
    orgs: all.length + 1,
    allEvents: Number(rows!.all),
    seconds: { orgs: orgSeconds, events: eventSeconds, rollups: rollupSeconds },
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
      name: 'breakdown 30d by integration',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=integration`,
      naive: breakdown(`CASE WHEN surface IN ('', 'web', 'cli', 'api', 'mobile') THEN '' ELSE surface END`),
    },
    {
      name: 'breakdown 30d by tool',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=tool`,
      naive: breakdown(`coalesce(metadata->>'tool', '')`),
    },
    {
      name: 'breakdown 30d by member, one tool',
      kind: 'dashboard',
      path: `${base}/breakdown?range=30d&by=member&tool=code`,
      naive: breakdown('member_id', `AND metadata->>'tool' = 'code'`),
    },
    {
      name: 'breakdown 30d by workspace, one member',
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

/** Set in the forked client that times the server's answers. */
const CLIENT_FLAG = '--usage-bench-client';
/** `reps` requests for `path`, one at a time; answers each one's milliseconds. */
interface TimingJob {
  url: string;
  path: string;
  reps: number;
}
const timeAnswers = async (job: TimingJob): Promise<number[]> => {
  const ms: number[] = [];
  for (let i = 0; i < job.reps; i++) ms.push((await timed(() => call(job, 'GET', job.path)))[0]);
  return ms;
};
serveGeneratorJobs<TimingJob, number[]>(CLIENT_FLAG, timeAnswers, () => agent.destroy());

interface PairBuild {
  hours: number;
  hourRows: number;
  days: number;
  rows: number;
  seconds: number;
}

/** What the build_usage_rollups job does in production, run to the end (nothing due on a kept set). */
async function buildPairs(tally: RunningTally): Promise<PairBuild> {
  const all = { budgetMs: Number.POSITIVE_INFINITY };
  const [ms, [hours, days]] = await timed(async () => [
    await buildHourlyDims(tally.tally.db, all),
    await buildUsagePairs(tally.tally.db, all),
  ]);
  return { hours: hours.hours, hourRows: hours.rows, days: days.days, rows: days.rows, seconds: ms / 1000 };
}

interface ProbeFigures {
  probe: Probe;
  tally: number[][];
  naive: number[][];
}

/**
 * BENCH_USAGE_KEEP=1 keeps the server database with its generated data set (its facts in the
 * database's comment) and names it; BENCH_USAGE_DATABASE=<name> measures on such a database instead
 * of generating one (about 25 minutes for 10 million events here). Tally migrates it on start.
 */
const keep = process.env.BENCH_USAGE_KEEP === '1';
const reused = process.env.BENCH_USAGE_DATABASE;

async function storeDataSet(tally: RunningTally, data: DataSet): Promise<void> {
  const [{ name }] = (await tally.tally.db.query<{ name: string }>('SELECT current_database() AS name')) as [
    { name: string },
  ];
  const facts = JSON.stringify(data).replaceAll("'", "''");
  await tally.tally.db.exec(`COMMENT ON DATABASE "${name}" IS '${facts}'`);
  process.stderr.write(`  data set kept in database ${name} (BENCH_USAGE_DATABASE=${name} reuses it)\n`);
}

async function storedDataSet(tally: RunningTally): Promise<DataSet> {
  const [row] = await tally.tally.db.query<{ facts: string | null }>(
    `SELECT shobj_description(oid, 'pg_database') AS facts FROM pg_database WHERE datname = current_database()`,
  );
  if (!row?.facts) throw new Error(`database ${reused} holds no data set kept by BENCH_USAGE_KEEP=1`);
  return JSON.parse(row.facts) as DataSet;
}

async function measure(
  database: BenchDatabase,
  kind: DatabaseKind,
  options: BenchOptions,
): Promise<{ figures: ProbeFigures[]; data: DataSet; deepPage: number; pairs: PairBuild }> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const size = sizeOf(kind, options.quick);
  const tally = await database.startTally();
  let served: Awaited<ReturnType<typeof startTallyProcesses>> | null = null;
  let client: LoadGenerator<TimingJob, number[]> | null = null;
  try {
    options.log(
      `  ${database.label}: generating ${size.events} + ${size.otherEvents} events over ${size.others + 1} orgs`,
    );
    // Only the server's data set is kept: PGlite's lives in a temporary folder.
    const onServer = kind === 'server';
    const data =
      onServer && reused ? await storedDataSet(tally) : await buildDataSet(tally, size, options.log);
    if (onServer && keep) await storeDataSet(tally, data);
    options.log(
      `  ${database.label}: ${data.orgs} orgs in ${data.seconds.orgs.toFixed(1)} s, events in ${data.seconds.events.toFixed(1)} s, rollups in ${data.seconds.rollups.toFixed(1)} s`,
    );
    const pairs = await buildPairs(tally);
    options.log(
      `  ${database.label}: job rollups of ${pairs.hours} busy hours (${fmt(pairs.hourRows)} rows) and ${pairs.days} busy days (${fmt(pairs.rows)} pair rows) built in ${pairs.seconds.toFixed(1)} s`,
    );
    // On the server, the answers come from Tally in a process of its own, as `npm start` runs it:
    // in this process its requests shared the event loop and the heap (and the collector's pauses)
    // with the bench's own work. PGlite has one owner, so there it is this process's Tally.
    served = onServer ? await startTallyProcesses(tally.tally.config.DATABASE_URL!, 1) : null;
    // Timed from a small process of its own too: this process's heap (the data set's Tally, the
    // bench) made collector pauses of 70-80 ms that fell inside timed requests.
    client = onServer ? await forkGenerator<TimingJob, number[]>(import.meta.url, CLIENT_FLAG) : null;
    const answering = served ?? tally;
    freshConnections();
    const summary = await call(answering, 'GET', `/v1/orgs/${data.orgId}/usage/summary?range=30d`);
    const [deep] = await tally.tally.db.query<{ at: string; seq: string }>(
      `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, seq::text AS seq
         FROM events WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3
        ORDER BY occurred_at DESC, seq DESC OFFSET $4 LIMIT 1`,
      [data.orgId, summary.range.start, summary.range.end, (size.deepPage - 1) * PAGE - 1],
    );
    if (!deep) throw new Error('the data set is too small for the deep page');
    // BENCH_USAGE_ONLY=<words,...>: only the answers whose name holds one of them (while working on those).
    const only = process.env.BENCH_USAGE_ONLY?.split(',');
    const list = probes(data.orgId, size.deepPage, encodeCursor([deep.at, deep.seq])).filter(
      (probe) => !only || only.some((word) => probe.name.includes(word)),
    );
    const figures: ProbeFigures[] = list.map((probe) => ({ probe, tally: [], naive: [] }));
    // Warm-up, and the naive answer checked against Tally's where both are totals.
    for (const f of figures) {
      const answer = await call(answering, 'GET', f.probe.path);
      const naive = f.probe.naive(answer);
      const rows = await tally.tally.db.query<Record<string, unknown>>(naive.sql, naive.params);
      freshConnections();
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
    // The checks' scans ran last: one untimed answer each after them.
    for (const f of figures) await call(answering, 'GET', f.probe.path);
    // Tally's rounds first, then the naive rounds: a naive answer is seconds of parallel scans by
    // another backend, and Tally's first requests after one ran up to 2x slower (measured).
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of figures) {
        const job = { url: answering.url, path: f.probe.path, reps: sizes.reps };
        f.tally.push(client ? await client.run(job) : await timeAnswers(job));
        if (process.env.BENCH_USAGE_TRACE === '1')
          options.log(
            `    ${f.probe.name}: ${f.tally
              .at(-1)!
              .map((ms) => ms.toFixed(0))
              .join(' ')}`,
          );
      }
      options.log(`  ${database.label}: Tally round ${round + 1}/${ROUNDS} done`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of figures) {
        const answer = await call(answering, 'GET', f.probe.path);
        const naive = f.probe.naive(answer);
        const raw: number[] = [];
        for (let i = 0; i < sizes.naiveReps; i++)
          raw.push((await timed(() => tally.tally.db.query(naive.sql, naive.params)))[0]);
        f.naive.push(raw);
        freshConnections();
      }
      options.log(`  ${database.label}: naive round ${round + 1}/${ROUNDS} done`);
    }
    return { figures, data, deepPage: size.deepPage, pairs };
  } finally {
    await client?.stop();
    await served?.stop();
    await tally.stop();
  }
}

export const usage: BenchModule = {
  name: 'usage',
  description:
    'Usage dashboards of one large org (Europe/Berlin): 1 million events in the last 30 days (250 members, 6 features, ' +
    '9 models, 8 surfaces of which 2 integrations, 12 workspaces, a tool on 30 %), beside 999 other orgs with 9 million ' +
    'more on the server: 10 million events over 1 000 orgs (PGlite: the large org alone). Events are generated in SQL and ' +
    'the rollups backfilled from them with one statement per table (the sums the ingest path keeps, checked row for row ' +
    'against what ingest kept for 2 000 events sent through `POST /v1/events`). Each answer is fetched over HTTP from a ' +
    'running Tally with the operator key (on the server, Tally as `npm start` runs it, in a process of its own, timed from ' +
    'a small client process of its own; on PGlite, in the bench process, which owns the database): p95 of 20 requests per round, median of 3 rounds (quick: 30 000 events, 6 ' +
    'requests). Baseline: the same answer computed naively over raw events (`GROUP BY` on `events`; for events pages, ' +
    "`OFFSET` pagination at the same depth), p95 of 5 runs per round; ratio = Tally / naive. Tally's rounds all run " +
    'before the naive ones (after one untimed answer each), so that no timed request follows seconds of parallel naive scans.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const sections: Section[] = [];
    for (const kind of options.databases) {
      const database =
        kind === 'server' && (keep || reused)
          ? await serverDatabase(options.serverUrl, { existing: reused, keep })
          : await openBenchDatabase(kind, options.serverUrl);
      try {
        const { figures, data, deepPage, pairs } = await measure(database, kind, options);
        const lines = [
          `Data set: ${fmt(data.allEvents)} events over ${fmt(data.orgs)} orgs, generated in ` +
            `${data.seconds.events.toFixed(0)} s, rollups backfilled and the tables vacuumed (autovacuum is off on this server) in ${data.seconds.rollups.toFixed(0)} s ` +
            `(identical to ingest's on the ${fmt(CHECK_EVENTS)}-event sample). ` +
            `Large org: ${fmt(data.events)} events in ${DAYS} days. Its rollup rows: wide \`usage_hourly\` ` +
            `${fmt(data.rows.wide)} (${(data.rows.wide / data.events).toFixed(2)} per event), \`usage_hourly_total\` ` +
            `${fmt(data.rows.hourlyTotal)}, \`usage_daily_dim\` ${fmt(data.rows.dailyDim)}. ` +
            `The build_usage_rollups job then rolled ${fmt(pairs.hours)} busy hours up by dimension ` +
            `(${fmt(pairs.hourRows)} \`usage_hourly_dim\` rows) and ${fmt(pairs.days)} busy days by pairs of dimensions ` +
            `(${fmt(pairs.rows)} \`usage_daily_pair\` rows) in ${pairs.seconds.toFixed(0)} s.`,
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
            'naive form skips the rows with OFFSET. "One member" and "one tool" filter on another dimension than the one ' +
            'broken down, so they read pair rows for the closed days and the wide rollup (raw events for the tool) for ' +
            'today; every other answer reads the narrow ones.',
        );
        sections.push({ title: `Usage dashboards on ${database.label}`, lines });
      } finally {
        await database.dispose();
      }
    }
    return { measurements, sections };
  },
};
