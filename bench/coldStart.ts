/**
 * Cold start: the time from spawning `tsx src/main.ts` (what `npm start` runs after the web build
 * check) to the first 200 from `/readyz`, on a first start (empty data folder or fresh database:
 * migrations and the price catalog load) and on a restart of the same data. Baseline: a bare Node.js
 * process that answers HTTP, spawned and polled the same way (the floor of any Node service).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BENCH_OPERATOR_KEY } from './support/databases.ts';
import { START_NODE_FLAGS } from './support/tallyProcess.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const RUNS = 3;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Spawns the command and answers the milliseconds until GET url answers 200; the process is stopped. */
async function timeToReady(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  url: string,
): Promise<number> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr = (stderr + String(chunk)).slice(-2000);
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}: ${stderr}`);
      if (performance.now() - started > 120_000) throw new Error(`${url} not ready within 120 s: ${stderr}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return performance.now() - started;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await stop(child);
  }
}

async function tallyStart(env: Record<string, string>): Promise<number> {
  const port = await freePort();
  return timeToReady(
    TSX,
    [...START_NODE_FLAGS, 'src/main.ts'],
    {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      TALLY_ADMIN_KEY: BENCH_OPERATOR_KEY,
      TALLY_DEMO: '0',
      TALLY_LOG: 'off',
      ...env,
    },
    `http://127.0.0.1:${port}/readyz`,
  );
}

async function bareNode(): Promise<number> {
  const port = await freePort();
  const script = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
  return timeToReady(process.execPath, ['-e', script], process.env, `http://127.0.0.1:${port}/`);
}

/** A database of its own on the server for one first start, dropped afterwards. */
async function withServerDatabase<T>(
  adminUrl: string,
  n: number,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const name = `tally_bench_cold_${process.pid}_${n}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

export const coldStart: BenchModule = {
  name: 'coldstart',
  description:
    'Time from spawning `tsx src/main.ts` (what `npm start` runs once the web app is built; no demo organization, jobs on) to the first 200 from `/readyz`: a first start (empty PGlite data folder or fresh server database: migrations and the genai-prices catalog load) and a restart on the same data. Baseline: a bare Node.js HTTP server spawned and polled the same way. Median of 3 runs.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const runs = options.quick ? 1 : RUNS;
    const baseline: number[] = [];
    for (let i = 0; i < runs; i++) baseline.push(Math.round(await bareNode()));
    const measurements: Measurement[] = [];
    const add = (benchmark: string, database: string, values: number[]) =>
      measurements.push({
        benchmark,
        database,
        unit: 'ms',
        runs: values.map(Math.round),
        better: 'lower',
        baseline: { label: 'bare Node.js HTTP ms', runs: baseline },
      });
    for (const kind of options.databases) {
      const first: number[] = [];
      const again: number[] = [];
      for (let i = 0; i < runs; i++) {
        if (kind === 'embedded') {
          const dir = mkdtempSync(join(tmpdir(), 'tally-bench-cold-'));
          try {
            first.push(await tallyStart({ TALLY_DATA_DIR: dir }));
            again.push(await tallyStart({ TALLY_DATA_DIR: dir }));
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        } else {
          await withServerDatabase(options.serverUrl, i, async (url) => {
            first.push(await tallyStart({ DATABASE_URL: url }));
            again.push(await tallyStart({ DATABASE_URL: url }));
          });
        }
        options.log(
          `  coldstart ${kind} run ${i + 1}: first ${Math.round(first.at(-1)!)} ms, restart ${Math.round(again.at(-1)!)} ms`,
        );
      }
      const label = kind === 'embedded' ? 'PGlite' : 'Postgres server';
      add('cold start, first start (migrations, catalog) to /readyz', label, first);
      add('cold start, restart on the same data to /readyz', label, again);
    }
    return { measurements, sections: [] };
  },
};
