/**
 * Gateway overhead: the same streamed chat completions sent straight to a local upstream and
 * through Tally's gateway, 200 streams at a time. The upstream (test/support/fakeProviders.ts)
 * runs in a child process so it does not share Tally's event loop; the clients read raw SSE
 * with fetch. Added latency is the gateway's percentile minus the direct one, for the first
 * byte (the hold is placed before forwarding) and for the whole stream (billing included: the
 * stream closes once the capture is committed).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startFakeProviders } from '../test/support/fakeProviders.ts';
import { BENCH_OPERATOR_KEY, openBenchDatabase } from './support/databases.ts';
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

const FAKE_UPSTREAM_FLAG = '--fake-upstream';
const UPSTREAM_KEY = 'sk-bench-upstream';

/** The child: serves the fake providers and tells the parent their address. */
if (process.argv.includes(FAKE_UPSTREAM_FLAG)) {
  const fake = await startFakeProviders({ chunks: CHUNKS, chunkDelayMs: CHUNK_DELAY_MS });
  process.send?.({ url: fake.url });
  process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
}

function startUpstreamProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), [FAKE_UPSTREAM_FLAG], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ url: (m as { url: string }).url, child }));
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
}

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
  concurrency === 1 ? `1 stream at a time (${IN_A_ROW} in a row)` : `${concurrency} streams`;

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

export const gateway: BenchModule = {
  name: 'gateway',
  description: `Gateway overhead: streamed chat completions one at a time (${IN_A_ROW} in a row), then ${CONCURRENCY.slice(1).join(' and ')} at once (${CHUNKS} chunks ${CHUNK_DELAY_MS} ms apart from a local upstream in its own process, spread over ${ORGS} orgs with monthly limits) sent straight to the upstream and through \`/gateway/openai/v1/chat/completions\`, read as raw SSE with fetch from the Tally process. Each gateway stream places a hold, bills one increment while streaming and captures before it closes. Added latency = gateway percentile - direct percentile, at the first byte (after the hold), at the last event (\`[DONE]\`) and at the close of the stream (after the capture); figures are medians over runs. For reference, the same number of holds at once through \`POST /v1/authorizations\`: the first byte waits for one (and for the key lookup), the close for the capture.`,
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    const runs = options.quick ? 1 : RUNS;
    const upstream = await startUpstreamProcess();
    try {
      for (const kind of options.databases) {
        const database = await openBenchDatabase(kind, options.serverUrl);
        const running = await database.startTally();
        // Bench Tallies start with the default settings; aim this one's gateway at the local upstream.
        Object.assign(running.tally.config, {
          TALLY_UPSTREAM_OPENAI_URL: upstream.url,
          OPENAI_API_KEY: UPSTREAM_KEY,
        });
        try {
          const keys: string[] = [];
          for (let i = 0; i < ORGS; i++) {
            const org = await json(`${running.url}/v1/orgs`, BENCH_OPERATOR_KEY, 'POST', {
              name: `Bench ${i}`,
              currency: 'EUR',
              timezone: 'Europe/Berlin',
            });
            await json(`${running.url}/v1/orgs/${org.id}/grants`, BENCH_OPERATOR_KEY, 'POST', {
              kind: 'topup',
              amount_credits: '100000000',
            });
            const key = await json(`${running.url}/v1/orgs/${org.id}/api_keys`, BENCH_OPERATOR_KEY, 'POST', {
              name: 'bench',
            });
            await json(`${running.url}/v1/orgs/${org.id}/limits`, key.key as string, 'PUT', {
              alert_threshold: '900000',
              allowed_limit: '1000000',
            });
            keys.push(key.key as string);
          }
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
                const name = `hold round trip p${p}, ${concurrency === 1 ? 'one at a time' : `${concurrency} at once`} (for reference)`;
                added.set(name, [...(added.get(name) ?? []), percentile(holds, p)]);
              }
              options.log(`  ${database.label} ${concurrency} streams run ${run} done`);
            }
            for (const [benchmark, values] of added) {
              measurements.push({
                benchmark,
                database: database.label,
                unit: 'ms',
                better: 'lower',
                runs: values,
                ...(concurrency === 200 && benchmark.startsWith('gateway') && benchmark.includes('p99')
                  ? { target: 10 }
                  : {}),
              });
            }
          }
        } finally {
          await running.stop();
          await database.dispose();
        }
      }
    } finally {
      upstream.child.disconnect();
    }
    // Other work on the machine (tests, other benches) inflates every figure here; say how much.
    lines.unshift(
      `- 1-minute load average when these runs ended: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores (above the core count, other work shared the machine and every figure here is inflated).`,
    );
    return { measurements, sections: [{ title: 'Gateway overhead runs', lines }] };
  },
};
