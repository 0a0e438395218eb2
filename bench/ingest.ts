/**
 * Ingest throughput: batches of 1 000 realistic events over real HTTP into a Tally started as
 * `npm start` starts it, from several concurrent keep-alive clients, with pricing, idempotency
 * (event ids and an Idempotency-Key per request) and hourly rollups on. Beside it, the physical
 * baseline: a raw COPY of the very rows Tally stored into the same `events` table.
 * The clients run in a process of their own (this file, forked), so sending the batches and
 * reading the answers never takes Tally's event loop (only the machine's cores).
 */
import { availableParallelism } from 'node:os';
import type { UsageEventInput } from '../src/domain/usageEvent.ts';
import { type CpuFigures, cpuSince, cpuSnapshot } from './support/cpu.ts';
import {
  BENCH_OPERATOR_KEY,
  type BenchDatabase,
  type DatabaseKind,
  openBenchDatabase,
  type RunningTally,
} from './support/databases.ts';
import { DEFAULT_SHAPE, makeEvents } from './support/events.ts';
import { forkGenerator, type LoadGenerator, serveGeneratorJobs } from './support/loadGenerator.ts';
import { cpuProfile, type ProfileSummary } from './support/profile.ts';
import { SqlTimer, type StatementStats } from './support/sqlTimer.ts';
import { fmt, median } from './support/stats.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement, Section } from './types.ts';

/** Set in the forked load generator. */
const GENERATOR_FLAG = '--ingest-clients';
const BATCH = 1000;
const CLIENTS = 4;
const ORGS = 4;
const RUNS = 3;
const TARGET: Record<DatabaseKind, number> = { embedded: 5_000, server: 20_000 };
/** With the ledger on, ingest keeps at least this share (%) of its rate with the ledger off. */
const LEDGER_ON_SHARE_TARGET = 80;

/**
 * Timed batches per run, warm-up batches before them, batches of the profiled run. PGlite warms
 * up on 16 batches: after 4, its rate still rose from run to run (3 230, 3 801, 4 402 events/s on
 * the 2-core AMD VM), the process still warming up; after 16 it no longer did (4 763, 4 516, 4 621).
 */
const SIZES = {
  full: { embedded: { batches: 24, warmup: 16 }, server: { batches: 60, warmup: 8 } },
  quick: { embedded: { batches: 4, warmup: 1 }, server: { batches: 8, warmup: 2 } },
} as const;

interface Batch {
  body: string;
  key: string;
  size: number;
}

interface RunFigures {
  events: number;
  seconds: number;
  rate: number;
  copyRate: number;
  /** Cores busy during the timed batches: Node.js (with PGlite in it), Postgres backends, the rest. */
  cpu: CpuFigures;
  latencies: number[];
  sql: StatementStats[];
  batches: number;
}

async function call(run: RunningTally, method: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(run.url + path, {
    method,
    headers: { authorization: `Bearer ${BENCH_OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * `credits` orgs draw every event from their grants and write its ledger entries (the free plan's
 * 500 credits run out early in a run, so most entries are overage); `byom` orgs are billed in
 * USD at provider cost and keep no credits ledger: the same work with the ledger off.
 */
type BillingMode = 'credits' | 'byom';

async function createOrgs(
  run: RunningTally,
  count: number,
  tag: string,
  billingMode: BillingMode = 'credits',
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const euro = i % 2 === 0;
    const org = await call(run, 'POST', '/v1/orgs', {
      name: `Bench ${tag} ${i}`,
      currency: euro ? 'EUR' : 'USD',
      timezone: euro ? 'Europe/Berlin' : 'America/New_York',
      billing_mode: billingMode,
    });
    ids.push(org.id);
  }
  return ids;
}

function batchesOf(events: UsageEventInput[], tag: string): Batch[] {
  const out: Batch[] = [];
  for (let at = 0; at < events.length; at += BATCH) {
    const slice = events.slice(at, at + BATCH);
    out.push({
      body: JSON.stringify({ events: slice }),
      key: `bench-${tag}-${at / BATCH}`,
      size: slice.length,
    });
  }
  return out;
}

interface IngestAnswer {
  code?: string;
  results?: { status: string; error: unknown }[];
}

/**
 * Posts a batch. A keep-alive socket the server closes just as a request goes out fails the fetch
 * (seen on a saturated machine): the batch is sent again, which its Idempotency-Key makes safe (a
 * first attempt still running answers 409 `idempotency_key_in_progress` until it ends).
 */
async function post(url: string, batch: Batch): Promise<{ status: number; answer: IngestAnswer }> {
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${BENCH_OPERATOR_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': batch.key,
        },
        body: batch.body,
      });
    } catch (error) {
      if (attempt >= 3) throw new Error(`POST /v1/events failed ${attempt} times`, { cause: error });
      continue;
    }
    const answer = (await res.json()) as IngestAnswer;
    if (res.status === 409 && answer.code === 'idempotency_key_in_progress' && attempt < 600) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    return { status: res.status, answer };
  }
}

async function send(url: string, batch: Batch): Promise<void> {
  const { status, answer } = await post(url, batch);
  if (status !== 200 || !answer.results) {
    throw new Error(`POST /v1/events: ${status} ${JSON.stringify(answer).slice(0, 500)}`);
  }
  if (answer.results.length !== batch.size) throw new Error(`expected ${batch.size} results`);
  const bad = answer.results.find((r) => r.status !== 'accepted');
  if (bad) throw new Error(`an event was not accepted: ${JSON.stringify(bad)}`);
}

/**
 * The load generator's jobs: `make` readies `count` events of `makeEvents` in batches (untimed),
 * `send` times sending the batches made last to `url`.
 */
type DriveJob =
  | { kind: 'make'; orgIds: string[]; count: number; tag: string; seed: number }
  | { kind: 'send'; url: string };

interface Driven {
  ms: number;
  latencies: number[];
}

let made: Batch[] = [];

async function runDriveJob(job: DriveJob): Promise<Driven> {
  if (job.kind === 'send') return drive(job.url, made, CLIENTS);
  made = batchesOf(
    makeEvents({ ...DEFAULT_SHAPE, orgIds: job.orgIds }, job.count, job.tag, job.seed),
    job.tag,
  );
  return { ms: 0, latencies: [] };
}

serveGeneratorJobs<DriveJob, Driven>(GENERATOR_FLAG, runDriveJob, () => {});

/** `clients` keep-alive clients take the next batch until none is left. */
async function drive(url: string, batches: Batch[], clients: number): Promise<Driven> {
  let next = 0;
  const latencies: number[] = [];
  const client = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const started = performance.now();
      await send(url, batch);
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  return { ms: performance.now() - started, latencies };
}

interface OneRun {
  figures: RunFigures | null;
  profile: ProfileSummary | null;
}

/** One run on a fresh database: warm up, time the batches, verify, then the COPY baseline. */
async function oneRun(
  generator: LoadGenerator<DriveJob, Driven>,
  database: BenchDatabase,
  kind: DatabaseKind,
  runNo: number,
  sizes: { batches: number; warmup: number },
  mode: 'timed' | 'profiled',
  log: (line: string) => void,
  billingMode: BillingMode = 'credits',
): Promise<OneRun> {
  const timer = new SqlTimer();
  const tally = await database.startTally(timer);
  let ingested: Driven | null = null;
  let profile: ProfileSummary | null = null;
  const tag = `${kind}-${billingMode}-${runNo}`;
  const events = sizes.batches * BATCH;
  let orgIds: string[];
  let cpu: CpuFigures | null = null;
  let sql: StatementStats[] = [];
  try {
    const warmOrgs = await createOrgs(tally, 1, `${tag}-warmup`);
    const send = () => generator.run({ kind: 'send', url: tally.url });
    await generator.run({
      kind: 'make',
      orgIds: warmOrgs,
      count: sizes.warmup * BATCH,
      tag: `w${tag}`,
      seed: 7,
    });
    await send();

    orgIds = await createOrgs(tally, ORGS, tag, billingMode);
    await generator.run({ kind: 'make', orgIds, count: events, tag: `e${tag}`, seed: 1000 + runNo });
    timer.reset();
    const cpuBefore = cpuSnapshot(await database.backendPids(), [generator.pid]);
    if (mode === 'profiled') {
      const profiled = await cpuProfile(`ingest ${database.label}`, send);
      ingested = profiled.result;
      profile = profiled.summary;
    } else {
      ingested = await send();
    }
    cpu = cpuSince(cpuBefore, await database.backendPids());
    sql = timer.snapshot();

    const [stored] = await tally.tally.db.query<{ n: string; calls: string }>(
      `SELECT (SELECT count(*) FROM events WHERE org_id = ANY($1::text[])) AS n,
              (SELECT coalesce(sum(calls), 0) FROM usage_hourly WHERE org_id = ANY($1::text[])) AS calls`,
      [orgIds],
    );
    if (Number(stored!.n) !== events || Number(stored!.calls) !== events) {
      throw new Error(`expected ${events} events and rollup calls, found ${stored!.n} and ${stored!.calls}`);
    }
  } finally {
    await tally.stop();
  }
  const rate = events / (ingested.ms / 1000);
  const ledger = billingMode === 'credits' ? '' : ', ledger off';
  log(
    `  ${database.label} ${mode} run ${runNo}${ledger}: ${fmt(rate)} events/s (${events} events in ${(ingested.ms / 1000).toFixed(2)} s)`,
  );
  if (mode === 'profiled') return { figures: null, profile };
  const figures: RunFigures = {
    events,
    seconds: ingested.ms / 1000,
    rate,
    copyRate: Number.NaN,
    cpu: cpu!,
    latencies: ingested.latencies,
    sql,
    batches: sizes.batches,
  };
  // The ledger-off runs are a comparison of their own: the COPY baseline is the main runs'.
  if (billingMode !== 'credits') return { figures, profile: null };

  const list = orgIds.map((id) => `'${id}'`).join(', ');
  const copy = await database.withRaw(async (raw) => {
    const data = await raw.copyOut(`SELECT * FROM events WHERE org_id IN (${list})`);
    await raw.query('TRUNCATE events');
    const result = await raw.copyIn('events', data);
    const [count] = await raw.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    if (result.rows !== events || count!.n !== events) {
      throw new Error(`COPY wrote ${result.rows} rows, table has ${count!.n}, expected ${events}`);
    }
    return result;
  });
  const copyRate = events / (copy.ms / 1000);
  log(
    `  ${database.label} COPY baseline run ${runNo}: ${fmt(copyRate)} rows/s (${(copy.ms / 1000).toFixed(2)} s)`,
  );
  return { figures: { ...figures, copyRate }, profile: null };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : '-');
const core = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const cores = (c: CpuFigures) => `${core(c.node)} / ${core(c.others)} / ${core(c.clients)} / ${core(c.rest)}`;
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

function runsSection(label: string, runs: RunFigures[]): string[] {
  return [
    `${label}: ${CLIENTS} concurrent clients, batches of ${BATCH}, ${ORGS} orgs (EUR and USD), operator key.`,
    '',
    `| run | events | seconds | events/s | COPY rows/s | cores busy: Tally's Node.js / Postgres backends / clients / rest of the machine (of ${availableParallelism()}) | batch latency p50 / p95 ms |`,
    '|---|---|---|---|---|---|---|',
    ...runs.map(
      (r, i) =>
        `| ${i + 1} | ${r.events} | ${r.seconds.toFixed(2)} | ${fmt(r.rate)} | ${fmt(r.copyRate)} | ${cores(r.cpu)} | ${fmt(
          quantile(r.latencies, 0.5),
        )} / ${fmt(quantile(r.latencies, 0.95))} |`,
    ),
    '',
    label === 'PGlite'
      ? "PGlite runs inside Tally's Node.js process, so its Postgres time is in the Node.js figure."
      : 'Postgres backends: the server processes serving the bench database (background writers not counted).',
    'Clients: the load generator, a process of its own. The rest of the machine is whatever else ran meanwhile (other work on a shared machine lowers the figures).',
  ];
}

/** Statement timings of all timed runs, summed, with the number of batches they cover. */
function mergedSql(runs: RunFigures[]): { batches: number; stats: StatementStats[] } {
  const merged = new Map<string, StatementStats>();
  for (const r of runs) {
    for (const s of r.sql) {
      const entry = merged.get(s.label) ?? { label: s.label, count: 0, ms: 0 };
      entry.count += s.count;
      entry.ms += s.ms;
      merged.set(s.label, entry);
    }
  }
  return {
    batches: runs.reduce((a, r) => a + r.batches, 0),
    stats: [...merged.values()].sort((a, b) => b.ms - a.ms),
  };
}

const TX_LABEL = 'transaction (whole, incl. BEGIN/COMMIT and waits)';

/** Mean time per batch of each statement over all timed runs (waits included under concurrency). */
function phaseSection(runs: RunFigures[]): string[] {
  const { batches, stats } = mergedSql(runs);
  const wallPerBatch = runs.reduce((a, r) => a + r.seconds * 1000, 0) / batches;
  const latency = median(runs.flatMap((r) => r.latencies));
  return [
    `Wall time per batch (total time / batches, ${CLIENTS} clients in parallel): ${fmt(wallPerBatch)} ms;`,
    `median request latency seen by a client: ${fmt(latency)} ms.`,
    '',
    '| statement (as sent by Tally) | calls per batch | ms per batch |',
    '|---|---|---|',
    ...stats.map((s) => `| ${s.label} | ${(s.count / batches).toFixed(1)} | ${fmt(s.ms / batches)} |`),
  ];
}

function profileSection(profile: ProfileSummary): string[] {
  const share = (ms: number) => `${((ms / profile.totalMs) * 100).toFixed(1)} %`;
  return [
    `Self time of the Node.js process during one extra run (not counted above), sampled every 0.5 ms, ${fmt(
      profile.totalMs,
    )} ms in all.`,
    '',
    '| where | share |',
    '|---|---|',
    ...profile.byArea.slice(0, 14).map((a) => `| ${a.area} | ${share(a.ms)} |`),
    '',
    '| hottest functions | share |',
    '|---|---|',
    ...profile.byFunction.slice(0, 15).map((f) => `| ${f.fn.replace(/\|/g, '\\|')} | ${share(f.ms)} |`),
  ];
}

/** Plain reading of the figures: which resource ran out. */
function reading(label: string, runs: RunFigures[], target: number): string[] {
  const rate = median(runs.map((r) => r.rate));
  const node = median(runs.map((r) => r.cpu.node));
  const pg = median(runs.map((r) => r.cpu.others));
  const rest = median(runs.map((r) => r.cpu.rest));
  const machine = median(runs.map((r) => r.cpu.machine));
  const all = availableParallelism();
  const lines = [
    `- ${label}: ${fmt(rate)} events/s is ${((rate / target) * 100).toFixed(0)} % of the ${fmt(target)} target. ` +
      `Cores busy (median): Node.js ${core(node)}${Number.isFinite(pg) ? `, Postgres backends ${core(pg)}` : ''}, ` +
      `everything else on the machine ${core(rest)}; ${core(machine)} of ${all} in all.`,
  ];
  const { batches, stats } = mergedSql(runs);
  const tx = stats.find((s) => s.label === TX_LABEL);
  const inTx = stats.filter((s) => s.label.trimStart().startsWith('tx: '));
  if (tx && inTx.length > 0) {
    const statements = inTx.reduce((a, s) => a + s.ms, 0) / batches;
    const top = inTx[0]!;
    lines.push(
      `  A batch's transaction lasts ${fmt(tx.ms / batches)} ms; its statements take ${fmt(statements)} ms of it ` +
        `(the longest, ${top.label.trimStart().slice(4)}, ${fmt(top.ms / batches)} ms, lock waits included), the rest is ` +
        'JavaScript run while the transaction is open' +
        (label === 'PGlite' ? ' and waiting for the one PGlite connection.' : '.'),
    );
  }
  if (node >= 0.85)
    lines.push(
      '  The Node.js process is CPU-bound (one core): time in JS, and in PGlite when embedded, decides the rate.',
    );
  else if (machine >= all * 0.9)
    lines.push(
      `  The machine was saturated (${pct(machine / all)} of all cores busy)${
        rest >= 0.25 ? `, ${core(rest)} cores of it by other work, so these figures understate Tally` : ''
      }.`,
    );
  return lines;
}

export const ingest: BenchModule = {
  name: 'ingest',
  description:
    'Events per second accepted by `POST /v1/events`: batches of 1 000 realistic events (4 orgs in EUR and USD, 250 members ' +
    'each, 6 features, 7 surfaces, 12 workspaces, 9 OpenAI/Anthropic/Google models priced from the catalog, prompt-cache ' +
    'reads and writes, conversations, some metadata, spread over 72 hourly buckets) sent over real HTTP by 4 concurrent ' +
    "keep-alive clients in a process of their own (so they never take Tally's event loop, only the machine's cores) to a Tally started with `listen()` from src/server.ts (pricing, event-id " +
    'idempotency, an `Idempotency-Key` per request, hourly rollups; request log off). Every run starts on a fresh database, ' +
    'warms up, then times the batches; every event must come back `accepted`, and the stored rows and the rollup calls are ' +
    'counted afterwards. Baseline: the same rows, exported from `events`, written back into the emptied `events` table ' +
    "(same indexes) with one raw `COPY` (pg-copy-streams on the server, `COPY FROM '/dev/blob'` on PGlite); ratio = Tally / COPY. " +
    'The orgs are in credits mode: each event is drawn from their grants and gets its ledger entry (debit, or overage once ' +
    "the free plan's 500 credits are gone). Each run is followed by a twin with the ledger off: the same events for orgs " +
    'billed at provider cost (BYOM), which draw no grants and write no ledger entries but keep their spend counters; the ' +
    'ledger-on rate is compared with its twin run by run. Figures are the median of 3 runs, with min and max.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const generator = await forkGenerator<DriveJob, Driven>(import.meta.url, GENERATOR_FLAG);
    try {
      return await measureIngest(options, generator);
    } finally {
      await generator.stop();
    }
  },
};

async function measureIngest(
  options: BenchOptions,
  generator: LoadGenerator<DriveJob, Driven>,
): Promise<BenchResult> {
  const measurements: Measurement[] = [];
  const sections: BenchResult['sections'] = [];
  const readings: string[] = [];
  const profiles: [string, ProfileSummary][] = [];
  const size = options.quick ? SIZES.quick : SIZES.full;
  for (const kind of options.databases) {
    const runs: RunFigures[] = [];
    // The same runs with the ledger off, each right after its ledger-on twin, so drift over the
    // bench falls on both alike.
    const ledgerOff: RunFigures[] = [];
    let label = '';
    for (let run = 1; run <= RUNS; run++) {
      for (const billingMode of ['credits', 'byom'] as const) {
        const database = await openBenchDatabase(kind, options.serverUrl);
        label = database.label;
        try {
          const { figures } = await oneRun(
            generator,
            database,
            kind,
            run,
            size[kind],
            'timed',
            options.log,
            billingMode,
          );
          (billingMode === 'credits' ? runs : ledgerOff).push(figures!);
        } finally {
          await database.dispose();
        }
      }
    }
    measurements.push({
      benchmark: 'ingest, batches of 1 000 over HTTP',
      database: label,
      unit: 'events/s',
      better: 'higher',
      runs: runs.map((r) => r.rate),
      baseline: { label: 'COPY rows/s', runs: runs.map((r) => r.copyRate) },
      target: TARGET[kind],
    });
    measurements.push({
      benchmark: 'ingest with the ledger off (BYOM orgs: no grants drawn, no ledger entries)',
      database: label,
      unit: 'events/s',
      better: 'higher',
      runs: ledgerOff.map((r) => r.rate),
    });
    measurements.push({
      benchmark: 'ingest with the ledger on, as a share of the rate with it off (run by run)',
      database: label,
      unit: '%',
      better: 'higher',
      runs: runs.map((r, i) => (r.rate / ledgerOff[i]!.rate) * 100),
      target: LEDGER_ON_SHARE_TARGET,
    });
    const perRun: Section = { title: `Ingest runs on ${label}`, lines: runsSection(label, runs) };
    perRun.lines.push(
      '',
      'Where a batch spends its time in SQL (measured around each statement Tally sends):',
      '',
    );
    perRun.lines.push(...phaseSection(runs));
    sections.push(perRun);
    readings.push(...reading(label, runs, TARGET[kind]));
    if (options.profile) {
      const database = await openBenchDatabase(kind, options.serverUrl);
      try {
        const { profile } = await oneRun(
          generator,
          database,
          kind,
          RUNS + 1,
          size[kind],
          'profiled',
          options.log,
        );
        sections.push({ title: `CPU profile of ingest on ${label}`, lines: profileSection(profile!) });
        profiles.push([label, profile!]);
      } finally {
        await database.dispose();
      }
    }
  }
  for (const [label, profile] of profiles) {
    const share = (ms: number) => `${((ms / profile.totalMs) * 100).toFixed(0)} %`;
    const areas = profile.byArea.slice(0, 3).map((a) => `${a.area} ${share(a.ms)}`);
    const fns = profile.byFunction
      .filter((f) => !f.fn.startsWith('('))
      .slice(0, 3)
      .map((f) => `${f.fn} ${share(f.ms)}`);
    readings.push(
      `- Profile on ${label}, Node.js self time: ${areas.join(', ')}; hottest functions: ${fns.join(', ')}.`,
    );
  }
  sections.push({ title: 'Reading', lines: readings });
  return { measurements, sections };
}
