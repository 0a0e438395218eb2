/**
 * Gateway overhead: the same streamed chat completions sent straight to a local upstream and
 * through Tally's gateway, 200 streams at a time. The upstream (test/support/fakeProviders.ts)
 * runs in a child process so it does not share Tally's event loop; the clients read raw SSE
 * with fetch. Added latency is the gateway's percentile minus the direct one, for the first
 * byte (the hold is placed before forwarding) and for the whole stream (billing included: the
 * stream closes once the capture is committed).
 */
import { type ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startFakeProviders } from '../test/support/fakeProviders.ts';
import { cpuSince, cpuSnapshot, mainThreadWaitMs, processTicks } from './support/cpu.ts';
import { BENCH_OPERATOR_KEY, type BenchDatabase, openBenchDatabase } from './support/databases.ts';
import { forkGenerator, serveGeneratorJobs } from './support/loadGenerator.ts';
import { cpuProfile, type ProfileSummary } from './support/profile.ts';
import { SqlTimer } from './support/sqlTimer.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

/** The brief's figure is at 200 streams; 1 (one at a time) and 20 show the overhead before queueing. */
const CONCURRENCY = [1, 20, 200];
/** Streams sent one after another when measuring one at a time. */
const IN_A_ROW = 50;
/** Streams are spread over this many orgs: holds of one org queue on its balance lock. */
const ORGS = 20;
const CHUNKS = 20;
const CHUNK_DELAY_MS = 5;
const RUNS = 3;

/** Steady state: this many streams open at every moment, a new one starting as soon as one ends. */
const STEADY_STREAMS = 200;
const STEADY_CHUNKS = 100;
const STEADY_CHUNK_DELAY_MS = 30;
/** Seconds of load before the measured window (connections, JIT, the pool), then measured. */
const STEADY_WARM_UP_S = 5;
const STEADY_MEASURED_S = 20;
const STEADY_RUNS = 3;

const FAKE_UPSTREAM_FLAG = '--fake-upstream';
const GENERATOR_FLAG = '--load-generator';
const UPSTREAM_KEY = 'sk-bench-upstream';

/** The child: serves the fake providers and tells the parent their address. */
if (process.argv.includes(FAKE_UPSTREAM_FLAG)) {
  const [chunks, delay] = process.argv.slice(process.argv.indexOf(FAKE_UPSTREAM_FLAG) + 1).map(Number);
  const fake = await startFakeProviders({ chunks: chunks!, chunkDelayMs: delay! });
  process.send?.({ url: fake.url });
  process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
}

function startUpstreamProcess(
  chunks: number,
  delayMs: number,
): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), [FAKE_UPSTREAM_FLAG, String(chunks), String(delayMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ url: (m as { url: string }).url, child }));
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
}

/**
 * The baseline of the added latency: a pass-through proxy in the bench process (where Tally runs)
 * with no framework, no metering and no database, that reads the request and pipes the upstream's
 * answer back as it comes: what forwarding a stream alone adds on this machine.
 */
async function startBareProxy(upstreamUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });
  const target = new URL(upstreamUrl);
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      const payload = Buffer.concat(body);
      const forward = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          agent,
          headers: {
            authorization: req.headers.authorization ?? '',
            'content-type': 'application/json',
            'content-length': payload.length,
          },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? '' });
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The steady-state load generator: a process of its own (this file forked), so its CPU is never
// charged to the Tally it measures; node:http with keep-alive sockets and the SSE read raw.

interface SteadyJob {
  url: string;
  /** Request headers of stream i (the gateway's spread streams over orgs). */
  headers: Record<string, string>[];
  streams: number;
  warmUpMs: number;
  measuredMs: number;
}

interface SteadyResult {
  /** Sorted, in ms, of the streams started in the measured window. */
  firstByte: number[];
  lastEvent: number[];
  closed: number[];
  /** Every stream run in the phase (warm-up and the tail included) and those that failed. */
  total: number;
  failures: number;
  firstFailure: string | null;
  /** How long the phase lasted, the tail included. */
  ms: number;
}

const STREAM_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say a hundred words' }],
  max_completion_tokens: 200,
  stream: true,
  stream_options: { include_usage: true },
});

const generatorAgent = new http.Agent({ keepAlive: true, maxSockets: 4096 });

/** One streamed chat completion over node:http, read to its end as raw bytes. */
function rawStream(url: string, headers: Record<string, string>): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: generatorAgent,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(STREAM_BODY),
        },
      },
      (res) => {
        let firstByte = 0;
        let lastEvent = 0;
        let tail = '';
        let text = '';
        res.on('data', (chunk: Buffer) => {
          const now = performance.now() - started;
          firstByte ||= now;
          // `[DONE]` may straddle two chunks: keep the end of the previous one.
          const seen = tail + chunk.toString('latin1');
          if (res.statusCode !== 200) text += seen;
          else if (!lastEvent && seen.includes('data: [DONE]')) lastEvent = now;
          tail = seen.slice(-16);
        });
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200 || !lastEvent) {
            reject(
              new Error(
                `stream answered ${res.statusCode}${lastEvent ? '' : ' without [DONE]'}: ${text.slice(0, 300)}`,
              ),
            );
          } else resolve({ firstByte, lastEvent, closed: performance.now() - started });
        });
      },
    );
    req.on('error', reject);
    req.end(STREAM_BODY);
  });
}

/**
 * `streams` slots, each running one stream after another for the warm-up and the measured window;
 * streams started in the window are measured, and the load stays on until the last of them ends.
 */
async function steadyLoad(job: SteadyJob): Promise<SteadyResult> {
  const started = performance.now();
  const windowStart = started + job.warmUpMs;
  const windowEnd = windowStart + job.measuredMs;
  const timings: Timing[] = [];
  let measuredInFlight = 0;
  let total = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  let next = 0;
  const slot = async (offset: number) => {
    // Slots start spread over one stream's length, so streams end at a steady rate, not in waves.
    await new Promise((r) => setTimeout(r, offset));
    for (;;) {
      const now = performance.now();
      if (now >= windowEnd && measuredInFlight === 0) return;
      const measured = now >= windowStart && now < windowEnd;
      if (measured) measuredInFlight++;
      const i = next++;
      try {
        const timing = await rawStream(job.url, job.headers[i % job.headers.length]!);
        if (measured) timings.push(timing);
      } catch (error) {
        failures++;
        firstFailure ??= error instanceof Error ? error.message : String(error);
        // A refused stream ends at once: wait a stream's length, so refusals never turn the slot
        // into a tight loop that starves the streams being measured.
        await new Promise((r) => setTimeout(r, STEADY_CHUNKS * STEADY_CHUNK_DELAY_MS));
      } finally {
        total++;
        if (measured) measuredInFlight--;
      }
    }
  };
  const spread = STEADY_CHUNKS * STEADY_CHUNK_DELAY_MS;
  await Promise.all(Array.from({ length: job.streams }, (_, i) => slot((i * spread) / job.streams)));
  const sorted = (key: keyof Timing) => timings.map((t) => t[key]).sort((a, b) => a - b);
  return {
    firstByte: sorted('firstByte'),
    lastEvent: sorted('lastEvent'),
    closed: sorted('closed'),
    total,
    failures,
    firstFailure,
    ms: performance.now() - started,
  };
}

serveGeneratorJobs<SteadyJob, SteadyResult>(GENERATOR_FLAG, steadyLoad, () => generatorAgent.destroy());

/** user + system CPU of processes from /proc, in ms (USER_HZ 100); gone processes are left out. */
function cpuMsOf(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const ticks = processTicks(pid);
    if (Number.isFinite(ticks)) out.set(pid, ticks * 10);
  }
  return out;
}

/** Nanoseconds (perf_hooks histograms) as milliseconds for a report line. */
const ms = (ns: number) => (ns / 1e6).toFixed(1);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function json(url: string, key: string, method: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

interface Timing {
  firstByte: number;
  /** The last event of the answer (`[DONE]`) arrived. */
  lastEvent: number;
  /** The stream closed (through the gateway: after the capture is committed). */
  closed: number;
}

const POINTS = [
  ['first byte', 'firstByte'],
  ['last event', 'lastEvent'],
  ['stream closed', 'closed'],
] as const;

/** One streamed chat completion, read to the end. */
async function stream(url: string, headers: Record<string, string>, concurrency: number): Promise<Timing> {
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twenty words' }],
      max_completion_tokens: 100,
      stream: true,
    }),
  });
  if (res.status !== 200 || !res.body) {
    throw new Error(`stream answered ${res.status} at ${concurrency} streams: ${await res.text()}`);
  }
  const decoder = new TextDecoder();
  let firstByte = 0;
  let lastEvent = 0;
  for await (const chunk of res.body) {
    const now = performance.now() - started;
    firstByte ||= now;
    if (decoder.decode(chunk, { stream: true }).includes('[DONE]')) lastEvent = now;
  }
  return { firstByte, lastEvent, closed: performance.now() - started };
}

/** `concurrency` tasks at once, or `IN_A_ROW` one after another for a concurrency of 1. */
async function gather<T>(concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  if (concurrency > 1) return Promise.all(Array.from({ length: concurrency }, (_, i) => task(i)));
  const results: T[] = [];
  for (let i = 0; i < IN_A_ROW; i++) results.push(await task(i));
  return results;
}

const streamsLabel = (concurrency: number) =>
  concurrency === 1
    ? `1 stream at a time (${IN_A_ROW} in a row)`
    : `a burst of ${concurrency} streams at once`;

/** `concurrency` holds at once through POST /v1/authorizations: what a gateway call waits for first. */
async function holdRound(base: string, keys: string[], concurrency: number): Promise<number[]> {
  const latencies = await gather(concurrency, async (i) => {
    const started = performance.now();
    await json(`${base}/v1/authorizations`, keys[i % keys.length]!, 'POST', {
      member: `member-${i % 50}`,
      feature: 'chat',
      provider: 'openai',
      model: 'gpt-4o-mini',
      estimate: { credits: '1' },
    });
    return performance.now() - started;
  });
  return latencies.sort((a, b) => a - b);
}

/** `concurrency` streams at once; answers the sorted latencies of each point. */
async function round(concurrency: number, send: (i: number) => Promise<Timing>) {
  const timings = await gather(concurrency, send);
  const sorted = (key: keyof Timing) => timings.map((t) => t[key]).sort((a, b) => a - b);
  return { firstByte: sorted('firstByte'), lastEvent: sorted('lastEvent'), closed: sorted('closed') };
}

/** Sets up `ORGS` orgs with a large grant, a monthly limit and an org key each; answers the keys. */
async function benchOrgs(base: string): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < ORGS; i++) {
    const org = await json(`${base}/v1/orgs`, BENCH_OPERATOR_KEY, 'POST', {
      name: `Bench ${i}`,
      currency: 'EUR',
      timezone: 'Europe/Berlin',
    });
    await json(`${base}/v1/orgs/${org.id}/grants`, BENCH_OPERATOR_KEY, 'POST', {
      kind: 'topup',
      amount_credits: '100000000',
    });
    const key = await json(`${base}/v1/orgs/${org.id}/api_keys`, BENCH_OPERATOR_KEY, 'POST', {
      name: 'bench',
    });
    await json(`${base}/v1/orgs/${org.id}/limits`, key.key as string, 'PUT', {
      alert_threshold: '900000',
      allowed_limit: '1000000',
    });
    keys.push(key.key as string);
  }
  return keys;
}

/** Headers of gateway stream i: 20 orgs, 50 members each. */
const gatewayHeaders = (keys: string[]) =>
  Array.from({ length: 100 }, (_, i) => ({
    authorization: `Bearer ${keys[i % keys.length]}`,
    'tally-member': `member-${i % 50}`,
    'tally-feature': 'chat',
  }));

function profileLines(profile: ProfileSummary, timer: SqlTimer, streams: number): string[] {
  const share = (ms: number) => `${((ms / profile.totalMs) * 100).toFixed(1)} %`;
  const statements = timer.snapshot();
  const queries = statements
    .filter((s) => !s.label.startsWith('transaction'))
    .reduce((sum, s) => sum + s.count, 0);
  return [
    `${streams} streams through the gateway in the profiled phase; ${(queries / streams).toFixed(1)} statements per stream (BEGIN and COMMIT not counted), ${(profile.totalMs / streams).toFixed(1)} ms of sampled Node CPU per stream (the profiler's own cost included).`,
    '',
    '| Statement | per stream | ms per stream (wall, waits included) |',
    '|---|---:|---:|',
    ...statements.map(
      (s) =>
        `| ${s.label.replace(/\|/g, '\\|')} | ${(s.count / streams).toFixed(2)} | ${(s.ms / streams).toFixed(2)} |`,
    ),
    '',
    '| Where the Tally process spent its CPU | share |',
    '|---|---:|',
    ...profile.byArea.slice(0, 12).map((a) => `| ${a.area} | ${share(a.ms)} |`),
    '',
    '| Function | share |',
    '|---|---:|',
    ...profile.byFunction.slice(0, 20).map((f) => `| ${f.fn.replace(/\|/g, '\\|')} | ${share(f.ms)} |`),
  ];
}

export const gateway: BenchModule = {
  name: 'gateway',
  description: `Gateway overhead: the same streamed chat completions sent straight to a local upstream (test/support/fakeProviders.ts, in a process of its own) and through \`/gateway/openai/v1/chat/completions\`, on Tally started in the bench process, spread over ${ORGS} orgs with monthly limits (org keys, 50 members each). Each gateway stream places a hold, bills increments while streaming (at least every 2 s while the hold covers it, at once when one more step of 16 output tokens might not fit) and captures with the provider's usage before it closes. Added latency = gateway percentile - direct percentile, at the first byte (after the hold), at the last event (\`[DONE]\`) and at the close of the stream (after the capture); figures are the median over runs, with min and max. **Steady state (the target):** ${STEADY_STREAMS} streams open at every moment for ${STEADY_WARM_UP_S} s of warm-up and then ${STEADY_MEASURED_S} s measured; each stream is ${STEADY_CHUNKS} one-token chunks ${STEADY_CHUNK_DELAY_MS} ms apart, paced from the stream's start as a provider generates (about 3.0 s; the fake provider sends events that are ready together in one write), with the usage in a final chunk (\`stream_options.include_usage\`), and a new stream starts as soon as one ends (so about 60 new streams a second); the ${STEADY_STREAMS} slots start spread over one stream's length. Streams started in the measured window are measured, and the load stays on until the last of them has ended. The load comes from a process of its own (node:http keep-alive agent, SSE read as raw bytes), never from Tally's; each run is one direct phase, one bare proxy phase and one gateway phase, each with its own warm-up. **Baseline:** the same load through a bare pass-through proxy in the bench process (where Tally runs): node:http with no framework, no metering and no database, reading the request and piping the upstream's answer back as it comes; what it adds over the direct phase stands beside each added latency of the gateway (what forwarding a stream alone costs on this machine), ratio = gateway / bare proxy. Beside the latencies: the CPU per stream of the Tally process (all of the bench process's CPU during the gateway phase: the bench process does nothing else meanwhile) and of the database's Postgres backends (/proc), over every stream of the phase; the cores busy on the whole machine in each phase (/proc/stat), the share of the gateway phase Tally's main thread spent runnable but waiting for a core (/proc schedstat), and how late its 1 ms timers ran (event loop delay). **Bursts (no target):** ${CONCURRENCY.slice(1).join(' and ')} streams started at the same instant (${CHUNKS} chunks ${CHUNK_DELAY_MS} ms apart), and one at a time (${IN_A_ROW} in a row), read with fetch from the bench process (so the client's CPU shares Tally's event loop there); a burst of 200 holds queues behind each other by construction. For reference, the same number of holds at once through \`POST /v1/authorizations\`. With BENCH_PROFILE, one more steady-state gateway phase runs under the CPU profiler with every SQL statement counted (statements per stream).`,
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    const sections: { title: string; lines: string[] }[] = [];
    const runs = options.quick ? 1 : RUNS;
    const steadyRuns = options.quick ? 1 : STEADY_RUNS;
    const warmUpMs = (options.quick ? 2 : STEADY_WARM_UP_S) * 1000;
    const measuredMs = (options.quick ? 5 : STEADY_MEASURED_S) * 1000;
    const load = () => loadavg()[0]!.toFixed(2);
    const upstream = await startUpstreamProcess(CHUNKS, CHUNK_DELAY_MS);
    const steadyUpstream = await startUpstreamProcess(STEADY_CHUNKS, STEADY_CHUNK_DELAY_MS);
    const bareProxy = await startBareProxy(steadyUpstream.url);
    const generator = await forkGenerator<SteadyJob, SteadyResult>(import.meta.url, GENERATOR_FLAG);
    const aim = (running: Awaited<ReturnType<BenchDatabase['startTally']>>, url: string) =>
      // Bench Tallies start with the default settings; aim this one's gateway at the local upstream.
      Object.assign(running.tally.config, { TALLY_UPSTREAM_OPENAI_URL: url, OPENAI_API_KEY: UPSTREAM_KEY });
    try {
      for (const kind of options.databases) {
        const database = await openBenchDatabase(kind, options.serverUrl);
        let running = await database.startTally();
        try {
          const keys = await benchOrgs(running.url);
          const steadyLabel = `${STEADY_STREAMS} streams open steadily`;
          const steadyJob = (url: string, headers: Record<string, string>[]) => ({
            url,
            headers,
            streams: STEADY_STREAMS,
            warmUpMs,
            measuredMs,
          });
          const upstreamAuth = [{ authorization: `Bearer ${UPSTREAM_KEY}` }];
          const directSteady = steadyJob(`${steadyUpstream.url}/v1/chat/completions`, upstreamAuth);
          const bareSteady = steadyJob(`${bareProxy.url}/v1/chat/completions`, upstreamAuth);
          const gatewaySteady = () =>
            steadyJob(`${running.url}/gateway/openai/v1/chat/completions`, gatewayHeaders(keys));

          // Steady state.
          aim(running, steadyUpstream.url);
          const steady = new Map<string, number[]>();
          /** What the bare proxy added, by the name of the gateway's figure it stands beside. */
          const bareAdded = new Map<string, number[]>();
          const add = (figures: Map<string, number[]>, name: string, value: number) =>
            figures.set(name, [...(figures.get(name) ?? []), value]);
          for (let run = 1; run <= steadyRuns; run++) {
            const directCpu = cpuSnapshot();
            const base = await generator.run(directSteady);
            const directBusy = cpuSince(directCpu).machine;
            const loadDirect = load();
            const bare = await generator.run(bareSteady);
            const pgPids = await database.backendPids();
            const pgBefore = cpuMsOf(pgPids);
            const nodeBefore = process.cpuUsage();
            const gatewayCpu = cpuSnapshot();
            const waitBefore = mainThreadWaitMs();
            const loopDelay = monitorEventLoopDelay({ resolution: 1 });
            loopDelay.enable();
            const through = await generator.run(gatewaySteady());
            loopDelay.disable();
            const waited = (mainThreadWaitMs() - waitBefore) / through.ms;
            const gatewayBusy = cpuSince(gatewayCpu).machine;
            const node = process.cpuUsage(nodeBefore);
            const pgAfter = cpuMsOf([...new Set([...pgPids, ...(await database.backendPids())])]);
            let pgMs = 0;
            for (const [pid, ms] of pgAfter) pgMs += ms - (pgBefore.get(pid) ?? 0);
            const nodePerStream = (node.user + node.system) / 1000 / through.total;
            const pgPerStream = pgMs / through.total;
            const where = `${database.label}, ${steadyLabel}, run ${run}`;
            if (base.failures > 0 || bare.failures > 0 || through.failures > 0) {
              lines.push(
                `- ${where}: ${base.failures} direct, ${bare.failures} bare proxy and ${through.failures} gateway streams failed (first: ${through.firstFailure ?? bare.firstFailure ?? base.firstFailure})`,
              );
            }
            for (const [what, key] of POINTS) {
              for (const p of [50, 99]) {
                const d = percentile(base[key], p);
                const b = percentile(bare[key], p);
                const t = percentile(through[key], p);
                const name = `gateway added latency, ${what} p${p}, ${steadyLabel}`;
                add(steady, name, t - d);
                add(bareAdded, name, b - d);
                lines.push(
                  `- ${where}, ${what} p${p}: direct ${d.toFixed(1)} ms, through the bare proxy ${b.toFixed(1)} ms (added ${(b - d).toFixed(1)} ms), through the gateway ${t.toFixed(1)} ms, added ${(t - d).toFixed(1)} ms`,
                );
              }
            }
            add(steady, `Tally CPU per gateway stream, ${steadyLabel}`, nodePerStream);
            if (kind === 'server')
              add(steady, `Postgres CPU per gateway stream, ${steadyLabel}`, pgPerStream);
            const text = `${where}: ${base.firstByte.length} direct and ${through.firstByte.length} gateway streams measured (${base.total} and ${through.total} in the phases, ${((through.total / through.ms) * 1000).toFixed(0)}/s through the gateway over ${(through.ms / 1000).toFixed(0)} s, ${through.failures} failed${through.firstFailure ? `, first: ${through.firstFailure.slice(0, 200)}` : ''}); CPU per gateway stream Tally ${nodePerStream.toFixed(1)} ms${kind === 'server' ? ` + Postgres ${pgPerStream.toFixed(1)} ms` : ''}; cores busy on the whole machine ${directBusy.toFixed(2)} in the direct phase and ${gatewayBusy.toFixed(2)} in the gateway phase (of ${availableParallelism()}); Tally's event loop waited for a core ${(waited * 100).toFixed(0)} % of the gateway phase, its timers ran late by p50 ${ms(loopDelay.percentile(50))} / p99 ${ms(loopDelay.percentile(99))} / max ${ms(loopDelay.max)} ms; 1-minute load average ${loadDirect} after the direct phase, ${load()} after the gateway phase`;
            lines.push(`- ${text}`);
            options.log(`  ${text}`);
          }
          for (const [benchmark, values] of steady) {
            const bareRuns = bareAdded.get(benchmark);
            measurements.push({
              benchmark,
              database: database.label,
              unit: 'ms',
              better: 'lower',
              runs: values,
              ...(bareRuns ? { baseline: { label: 'added by a bare node:http proxy', runs: bareRuns } } : {}),
              ...(benchmark.startsWith('gateway') && benchmark.includes('p99') ? { target: 10 } : {}),
            });
          }

          // Bursts.
          aim(running, upstream.url);
          const direct = (concurrency: number) => (_: number) =>
            stream(
              `${upstream.url}/v1/chat/completions`,
              { authorization: `Bearer ${UPSTREAM_KEY}` },
              concurrency,
            );
          const viaGateway = (concurrency: number) => (i: number) =>
            stream(
              `${running.url}/gateway/openai/v1/chat/completions`,
              {
                authorization: `Bearer ${keys[i % ORGS]}`,
                'tally-member': `member-${i % 50}`,
                'tally-feature': 'chat',
              },
              concurrency,
            );
          for (const concurrency of CONCURRENCY) {
            // Warm both paths (connections, JIT, the price book) before measuring.
            await round(concurrency, direct(concurrency));
            await round(concurrency, viaGateway(concurrency));
            const added = new Map<string, number[]>();
            for (let run = 1; run <= runs; run++) {
              const base = await round(concurrency, direct(concurrency));
              const through = await round(concurrency, viaGateway(concurrency));
              for (const [what, key] of POINTS) {
                for (const p of [50, 99]) {
                  const d = percentile(base[key], p);
                  const t = percentile(through[key], p);
                  const name = `gateway added latency, ${what} p${p}, ${streamsLabel(concurrency)}`;
                  added.set(name, [...(added.get(name) ?? []), t - d]);
                  lines.push(
                    `- ${database.label}, ${streamsLabel(concurrency)}, run ${run}, ${what} p${p}: direct ${d.toFixed(1)} ms, through the gateway ${t.toFixed(1)} ms, added ${(t - d).toFixed(1)} ms`,
                  );
                }
              }
              const holds = await holdRound(running.url, keys, concurrency);
              for (const p of [50, 99]) {
                const name = `hold round trip p${p}, ${concurrency === 1 ? 'one at a time' : `a burst of ${concurrency} at once`} (for reference)`;
                added.set(name, [...(added.get(name) ?? []), percentile(holds, p)]);
              }
              options.log(
                `  ${database.label} ${streamsLabel(concurrency)} run ${run} done (load ${load()})`,
              );
            }
            for (const [benchmark, values] of added) {
              measurements.push({
                benchmark,
                database: database.label,
                unit: 'ms',
                better: 'lower',
                runs: values,
              });
            }
          }

          if (options.profile) {
            // A Tally of its own with every statement counted, profiled through one steady gateway phase.
            await running.stop();
            const timer = new SqlTimer();
            running = await database.startTally(timer);
            aim(running, steadyUpstream.url);
            const job = { ...gatewaySteady(), warmUpMs: 2000, measuredMs: options.quick ? 3000 : 8000 };
            const { result, summary } = await cpuProfile(`gateway ${database.label}`, () =>
              generator.run(job),
            );
            sections.push({
              title: `Gateway: statements and CPU profile per stream on ${database.label} (${steadyLabel})`,
              lines: profileLines(summary, timer, result.total),
            });
            options.log(`  ${database.label} profiled phase done`);
          }
        } finally {
          await running.stop();
          await database.dispose();
        }
      }
    } finally {
      await bareProxy.close();
      upstream.child.disconnect();
      steadyUpstream.child.disconnect();
      await generator.stop();
    }
    // Other work on the machine (tests, other benches) inflates every figure here; say how much.
    lines.unshift(
      `- 1-minute load average when these runs ended: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores. The bench's own processes count in it (Tally, its Postgres backends, the upstream and the load generator all run at once); well above the core count means other work shared the machine too.`,
    );
    return { measurements, sections: [{ title: 'Gateway overhead runs', lines }, ...sections] };
  },
};
