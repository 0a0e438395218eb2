/**
 * The one place that knows whether Tally runs on embedded Postgres (PGlite, one process, a data
 * folder) or on a Postgres server (pg pool). Everything else sees `Db` and writes plain SQL.
 * BIGINT and NUMERIC come back as strings on both, so no amount ever passes through a float.
 */
import { mkdirSync } from 'node:fs';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import pg from 'pg';

export interface QueryOptions {
  /**
   * Names a statement run very often (the hold): each server connection then parses and plans it
   * once and only executes it afterwards. A name must always go with the same SQL.
   */
  statement?: string;
  /**
   * The statement may open its transaction: run first in a transaction on the server, it travels
   * in one message with BEGIN, its parameters written into it as literals (so only strings,
   * booleans and null, and a text with no quoted literal of its own): a round trip less per
   * transaction. Meant for the spend lock, which increments and captures start with.
   */
  opening?: boolean;
  /**
   * The transaction's last statement: on the server it travels in one message with COMMIT (the
   * statement prepared once per connection and executed with its parameters as literals, so only
   * strings, booleans and null), and the transaction holds its locks one round trip less. Nothing
   * may be sent in the transaction after it.
   */
  closing?: boolean;
}

export interface Queryable {
  /** PGlite ignores the options: it has neither round trips nor prepared statements. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'embedded' | 'server';
  /**
   * Where dashboard reads go (usage reports, exports): the read pool of DATABASE_READ_URL (a
   * replica, whose answers may lag the writes by its replication delay) when one is set, else
   * this database itself.
   */
  readonly read: Queryable;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Embedded only: the whole data folder as a gzipped tarball (test templates, backups). */
  dump?: () => Promise<Blob>;
}

const TEXT_PARSERS = {
  [pgliteTypes.INT8]: (v: string) => v,
  [pgliteTypes.NUMERIC]: (v: string) => v,
};

export async function openEmbedded(options: { dataDir?: string; loadDataDir?: Blob } = {}): Promise<Db> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const pglite = new PGlite({
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
    parsers: TEXT_PARSERS,
  });
  await pglite.waitReady;
  type Target = Pick<PGlite, 'query' | 'exec'>;
  const wrap = (target: Target): Queryable => ({
    query: async (sql, params) => (await target.query(sql, params as unknown[])).rows as never,
    exec: async (sql) => {
      await target.exec(sql);
    },
  });
  const self = wrap(pglite);
  return {
    kind: 'embedded',
    ...self,
    read: self,
    transaction: (fn) => pglite.transaction((tx) => fn(wrap(tx))),
    close: () => pglite.close(),
    dump: async () => pglite.dumpDataDir('gzip'),
  };
}

const serverTypes = {
  getTypeParser: (oid: number, format?: string) =>
    oid === 20 || oid === 1700 ? (v: string) => v : pg.types.getTypeParser(oid, format as 'text'),
} as pg.CustomTypesConfig;

/** Connections a server pool keeps open however long they stay idle. */
const WARM_CONNECTIONS = 4;

export async function openServer(url: string, options: { max?: number; readUrl?: string } = {}): Promise<Db> {
  const max = options.max ?? 20;
  const open = async (connectionString: string, application_name: string) => {
    const pool = new pg.Pool({
      connectionString,
      max,
      // A new connection runs its first statements with cold catalog caches: a dashboard query took
      // 60 to 90 ms more on a fresh backend than on the next call (10 M event set). Idle connections
      // are kept 5 minutes, not 10 s, and the last few used are never closed for idleness, so the
      // first dashboards after a quiet spell do not pay it.
      idleTimeoutMillis: 300_000,
      min: Math.min(WARM_CONNECTIONS, max),
      types: serverTypes,
      application_name,
    });
    // An idle client that loses its server (restart, failover) must not crash the process.
    pool.on('error', () => {});
    // A client in use when its server goes away emits 'error' too: its query fails (and the request
    // answers 503); the event itself must not crash the process.
    pool.on('connect', (client) => client.on('error', () => {}));
    const client = await pool.connect();
    client.release();
    return pool;
  };
  const pool = await open(url, 'tally');
  const readPool = options.readUrl ? await open(options.readUrl, 'tally-read') : null;
  const wrap = (target: pg.Pool | pg.PoolClient, prepareAll = false): Queryable => ({
    query: async (sql, params, options) => {
      const name = options?.statement ?? (prepareAll && params?.length ? preparedName(sql) : undefined);
      const result = await (name
        ? target.query({ name, text: sql, values: params })
        : target.query(sql, params));
      return result.rows;
    },
    exec: async (sql) => {
      await target.query(sql);
    },
  });
  const self = wrap(pool);
  return {
    kind: 'server',
    ...self,
    read: readPool ? wrap(readPool) : self,
    transaction: async (fn) => {
      const conn = await pool.connect();
      const inside = wrap(conn, true);
      // BEGIN goes out with the first statement: in the same message when that one can open it.
      let begun = false;
      const begin = async () => {
        if (begun) return;
        begun = true;
        await conn.query('BEGIN');
      };
      let committed = false;
      const tx: Queryable = {
        query: async (sql, params, options) => {
          if (committed) throw new Error('The transaction was committed by its closing statement');
          if (options?.closing) {
            await begin();
            committed = true;
            return executeAndCommit(conn, sql, params ?? []);
          }
          if (!begun && options?.opening) {
            begun = true;
            const [, opened] = (await conn.query(
              `BEGIN; ${withLiterals(sql, params ?? [])}`,
            )) as unknown as pg.QueryResult[];
            return opened!.rows;
          }
          await begin();
          return inside.query(sql, params, options);
        },
        exec: async (sql) => {
          if (committed) throw new Error('The transaction was committed by its closing statement');
          await begin();
          await inside.exec(sql);
        },
      };
      let failure: unknown = null;
      try {
        const result = await fn(tx);
        if (begun && !committed) await conn.query('COMMIT');
        return result;
      } catch (error) {
        failure = error;
        if (begun) await conn.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        // A connection whose prepared statements the server lost (or kept) apart from what this
        // process counts on is closed, not reused: the rerun (withRetry) gets a fresh one.
        conn.release(isPreparedMismatch(failure) ? (failure as Error) : undefined);
      }
    },
    close: async () => {
      await Promise.all([pool.end(), readPool?.end()]);
    },
  };
}

/**
 * `sql` with its parameters written in as literals, for a simple-protocol message. Every `$n` of
 * the text must be a parameter given: a text with a quoted literal of its own is refused.
 */
function withLiterals(sql: string, params: unknown[]): string {
  if (sql.includes("'") || sql.includes('$$')) {
    throw new Error('An opening statement must not hold literals of its own');
  }
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const at = Number(n) - 1;
    if (at >= params.length) throw new Error(`An opening statement names $${n} but has no such parameter`);
    return literal(params[at]);
  });
}

/**
 * Strings, booleans and null only: like a parameter, a quoted literal has no type until the
 * statement gives it one.
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return pg.escapeLiteral(value);
  if (typeof value === 'boolean') return `'${value}'`;
  throw new Error(
    `A statement sent with literals takes strings, booleans and null only, not ${typeof value}`,
  );
}

/** The closing statements prepared on each server connection (SQL PREPARE, by name). */
const preparedForClosing = new WeakMap<pg.PoolClient, Set<string>>();

/**
 * Runs a transaction's last statement and its COMMIT in one simple-protocol message. The statement
 * is prepared by name once per connection, so Postgres does not parse and plan it again under the
 * locks. If it fails, Postgres skips the COMMIT and the transaction is rolled back as usual.
 */
async function executeAndCommit(conn: pg.PoolClient, sql: string, params: unknown[]): Promise<never[]> {
  const args = params.length > 0 ? `(${params.map(literal).join(', ')})` : '';
  const name = preparedName(sql);
  if (!name) {
    const { rows } = await conn.query(sql, params);
    await conn.query('COMMIT');
    return rows as never[];
  }
  const closingName = `closing_${name}`;
  let prepared = preparedForClosing.get(conn);
  if (!prepared) {
    prepared = new Set();
    preparedForClosing.set(conn, prepared);
  }
  try {
    if (!prepared.has(closingName)) {
      await conn.query(`PREPARE ${closingName} AS ${sql}`);
      prepared.add(closingName);
    }
    const [executed] = (await conn.query(
      `EXECUTE ${closingName}${args}; COMMIT`,
    )) as unknown as pg.QueryResult[];
    return executed!.rows as never[];
  } catch (error) {
    if (isPreparedMismatch(error)) preparedForClosing.delete(conn);
    throw error;
  }
}

/**
 * The server does not know a statement this process prepared on the connection, or knows one it
 * did not (a pooler or a `DISCARD ALL` reset the session): 26000 and 42P05.
 */
const isPreparedMismatch = (error: unknown): boolean =>
  ['26000', '42P05'].includes((error as { code?: string } | null)?.code ?? '');

/**
 * Statements run inside write transactions (captures, increments, ingest, grants) are prepared
 * once per server connection and then only executed: parsing and planning the ledger and rollup
 * statements cost Postgres about a fifth of its CPU per gateway stream. Write paths send a fixed
 * set of texts; past this many distinct ones, further texts run unprepared, so a path that builds
 * its SQL cannot fill the server's memory with statements.
 */
const MAX_PREPARED = 300;
const preparedNames = new Map<string, string>();

function preparedName(sql: string): string | undefined {
  const known = preparedNames.get(sql);
  if (known || preparedNames.size >= MAX_PREPARED) return known;
  const name = `tx${preparedNames.size}`;
  preparedNames.set(sql, name);
  return name;
}
