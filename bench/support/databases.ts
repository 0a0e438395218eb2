/**
 * Fresh databases for benches, on embedded PGlite (a temp data folder) or on the Postgres server
 * (a new database beside the admin URL), with Tally started on them exactly as `npm start` does,
 * and raw access for physical baselines (COPY).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../../src/config.ts';
import { listen, prepare, type Tally } from '../../src/server.ts';
import { openDatabase } from '../../src/store/open.ts';
import type { SqlTimer } from './sqlTimer.ts';

export type DatabaseKind = 'embedded' | 'server';

export const DATABASE_LABEL: Record<DatabaseKind, string> = {
  embedded: 'PGlite',
  server: 'Postgres server',
};

/** The operator key of bench Tallies (never a real deployment's). */
export const BENCH_OPERATOR_KEY = 'tally_op_bench_0123456789abcdefghijklmnop';

export interface RunningTally {
  tally: Tally;
  url: string;
  stop(): Promise<void>;
}

/** Direct access to the database for baselines; Tally must be stopped (PGlite has one owner). */
export interface RawDb {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** The rows of a SELECT in COPY text format. */
  copyOut(select: string): Promise<Buffer>;
  /** COPY text rows into a table; answers the rows written and the time the COPY took. */
  copyIn(table: string, data: Buffer): Promise<{ rows: number; ms: number }>;
}

export interface BenchDatabase {
  kind: DatabaseKind;
  label: string;
  /** `SELECT version()`, shortened. */
  version(): Promise<string>;
  startTally(timer?: SqlTimer): Promise<RunningTally>;
  withRaw<T>(fn: (raw: RawDb) => Promise<T>): Promise<T>;
  /** Process ids of the server backends serving this database (none for PGlite: it runs in Node). */
  backendPids(): Promise<number[]>;
  /** The server database's postgres:// URL (null for PGlite, which has none). */
  url: string | null;
  dispose(): Promise<void>;
}

async function start(env: Record<string, string>, timer?: SqlTimer): Promise<RunningTally> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    TALLY_ADMIN_KEY: BENCH_OPERATOR_KEY,
    TALLY_LOG: 'off',
    TALLY_DEMO: '0',
    ...env,
  });
  const db = await openDatabase(config);
  const tally = await prepare(config, timer ? timer.wrap(db) : db);
  const { url, close } = await listen(tally);
  return {
    tally,
    url,
    stop: async () => {
      await close();
      await tally.db.close();
    },
  };
}

const shortVersion = (text: string) => text.match(/^PostgreSQL [\d.]+/)?.[0] ?? text;

export function embeddedDatabase(): BenchDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-'));
  const withRaw = async <T>(fn: (raw: RawDb) => Promise<T>): Promise<T> => {
    const pglite = new PGlite({ dataDir: dir });
    await pglite.waitReady;
    try {
      return await fn({
        query: async (sql, params) => (await pglite.query(sql, params)).rows as never,
        copyOut: async (select) => {
          const result = await pglite.query(`COPY (${select}) TO '/dev/blob'`);
          if (!result.blob) throw new Error('PGlite answered COPY TO without a blob');
          return Buffer.from(await result.blob.arrayBuffer());
        },
        copyIn: async (table, data) => {
          const blob = new Blob([data]);
          const started = performance.now();
          const result = await pglite.query(`COPY ${table} FROM '/dev/blob'`, [], { blob });
          return { rows: result.affectedRows ?? 0, ms: performance.now() - started };
        },
      });
    } finally {
      await pglite.close();
    }
  };
  return {
    kind: 'embedded',
    label: DATABASE_LABEL.embedded,
    url: null,
    version: () =>
      withRaw(async (raw) => shortVersion((await raw.query<{ v: string }>('SELECT version() v'))[0]!.v)),
    startTally: (timer) => start({ TALLY_DATA_DIR: dir }, timer),
    withRaw,
    backendPids: async () => [],
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

let serverDatabases = 0;

/**
 * A new database `tally_bench_<pid>_<n>` on the server of `adminUrl`, dropped by dispose() unless
 * `keep`; or, with `existing`, that database as it is (never dropped).
 */
export async function serverDatabase(
  adminUrl: string,
  options: { existing?: string; keep?: boolean } = {},
): Promise<BenchDatabase> {
  const name = options.existing ?? `tally_bench_${process.pid}_${++serverDatabases}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  if (!options.existing) {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const withRaw = async <T>(fn: (raw: RawDb) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      return await fn({
        query: async (sql, params) => (await client.query(sql, params)).rows,
        copyOut: async (select) => {
          const chunks: Buffer[] = [];
          const stream = client.query(copyTo(`COPY (${select}) TO STDOUT`));
          for await (const chunk of stream) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks);
        },
        copyIn: async (table, data) => {
          const pieces = function* () {
            for (let at = 0; at < data.length; at += 1 << 20) yield data.subarray(at, at + (1 << 20));
          };
          const started = performance.now();
          const stream = client.query(copyFrom(`COPY ${table} FROM STDIN`));
          await pipeline(Readable.from(pieces()), stream);
          return { rows: stream.rowCount, ms: performance.now() - started };
        },
      });
    } finally {
      await client.end();
    }
  };
  return {
    kind: 'server',
    label: DATABASE_LABEL.server,
    url: url.toString(),
    version: async () => shortVersion((await admin.query('SELECT version() v')).rows[0].v),
    startTally: (timer) => start({ DATABASE_URL: url.toString() }, timer),
    withRaw,
    backendPids: async () =>
      (
        await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name])
      ).rows.map((r) => r.pid),
    dispose: async () => {
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      if (!options.existing && !options.keep) await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.end();
    },
  };
}

export function openBenchDatabase(kind: DatabaseKind, serverUrl: string): Promise<BenchDatabase> {
  return kind === 'embedded' ? Promise.resolve(embeddedDatabase()) : serverDatabase(serverUrl);
}
