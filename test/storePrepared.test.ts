/**
 * On the Postgres server, a statement with parameters run inside a transaction is prepared once per
 * connection and executed by name afterwards (src/store/db.ts). PGlite has no prepared statements.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.ts';
import { freshDb, onServer } from './support/harness.ts';

const PROBE = 'SELECT $1::int + 1 AS n /* storePrepared probe */';

describe.runIf(onServer)('prepared statements on the Postgres server', () => {
  let db: Db;
  beforeAll(async () => {
    db = (await freshDb()).db;
  });
  afterAll(async () => {
    await db.close();
  });

  /** Prepared statements of the transaction's own connection whose text is the probe. */
  const preparedProbes = (tx: { query: Db['query'] }) =>
    tx.query<{ name: string }>('SELECT name FROM pg_prepared_statements WHERE statement = $1', [PROBE]);

  it('prepares a transaction statement once and reuses it on the same connection', async () => {
    const seen = await db.transaction(async (tx) => {
      const [first] = await tx.query<{ n: number }>(PROBE, [1]);
      const [second] = await tx.query<{ n: number }>(PROBE, [41]);
      return { first: first!.n, second: second!.n, prepared: await preparedProbes(tx) };
    });
    expect(seen.first).toBe(2);
    expect(seen.second).toBe(42);
    expect(seen.prepared).toHaveLength(1);
    expect(seen.prepared[0]!.name).toMatch(/^tx\d+$/);
  });
});
