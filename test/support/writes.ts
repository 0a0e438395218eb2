/**
 * Did a request write anything? Two ways to tell: a fingerprint of every table (exact, costs a scan
 * of the whole database), and the transaction ids Postgres handed out meanwhile (a transaction gets
 * one when it writes or locks a row; `pg_xact_status` says whether it committed). The second is
 * cheap enough to ask after every request, when nothing else writes to the database at the same
 * time; when it finds a committed transaction, `rowsWrittenBy` tells a row lock (SELECT ... FOR
 * UPDATE: no row version made) from an insert or update (a row version whose xmin is that id).
 */
import type { Queryable } from '../../src/store/db.ts';

/** The tables of the public schema. */
async function publicTables(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  return rows.map((r) => r.tablename);
}

/**
 * Row count and a hash of every table of the public schema, in one statement (a statement per
 * table cost 38 ms a fingerprint on PGlite, most of it round trips; one, 15 ms).
 */
export async function tableFingerprint(db: Queryable): Promise<Record<string, string>> {
  const tables = await publicTables(db);
  const rows = await db.query<{ t: string; n: number; h: string | null }>(
    tables
      .map(
        (name) =>
          `SELECT '${name}' AS t, count(*)::int AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM "${name}" x`,
      )
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, `${r.n}:${r.h}`]));
}

/** The next transaction id Postgres will assign. */
export async function nextXid(db: Queryable): Promise<bigint> {
  const [row] = await db.query<{ x: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x');
  return BigInt(row!.x);
}

/** Ids of the transactions assigned since `from` that committed (writes that stayed). */
export async function committedSince(db: Queryable, from: bigint): Promise<string[]> {
  const to = await nextXid(db);
  if (to === from) return [];
  const rows = await db.query<{ x: string }>(
    `SELECT x::text FROM generate_series($1::bigint, $2::bigint - 1) x
      WHERE pg_xact_status(x::text::xid8) = 'committed'`,
    [from.toString(), to.toString()],
  );
  return rows.map((r) => r.x);
}

/** Per table, how many live rows were inserted or updated by the transactions `xids`. */
export async function rowsWrittenBy(db: Queryable, xids: string[]): Promise<Record<string, number>> {
  const tables = await publicTables(db);
  const rows = await db.query<{ t: string; n: number }>(
    tables
      .map(
        (name) =>
          `SELECT '${name}' AS t, count(*)::int AS n FROM "${name}" WHERE xmin::text = ANY($1::text[])`,
      )
      .join(' UNION ALL '),
    [xids],
  );
  return Object.fromEntries(rows.filter((r) => r.n > 0).map((r) => [r.t, r.n]));
}
