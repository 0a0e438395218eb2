/**
 * On the Postgres server, a transaction's last statement (`closing`: the bill of an increment or a
 * capture) travels in one message with COMMIT, prepared once per connection and executed with its
 * parameters as literals (src/store/db.ts). Another connection sees its writes as soon as it
 * answers, before the transaction's function has even returned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openServer } from '../src/store/db.ts';
import { withRetry } from '../src/store/retry.ts';
import { freshDb, onServer } from './support/harness.ts';

const CLOSING = `INSERT INTO closing_probe (a, b, c) VALUES ($1, $2, $3) RETURNING a, b, c`;

/** Values a careless quoting would break or turn into SQL. */
const AWKWARD = [
  "O'Brien",
  'back\\slash \\x27',
  "'); DROP TABLE closing_probe; --",
  '$2 $1 $$',
  'ünïcödé ✓',
  '',
];

describe.runIf(onServer)('a transaction closed by its last statement on the Postgres server', () => {
  let db: Db;
  let url: string;
  const stored = async (a: string) =>
    (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM closing_probe WHERE a = $1', [a]))[0]!.n;

  beforeAll(async () => {
    const fresh = await freshDb();
    db = fresh.db;
    url = fresh.url!;
    await db.exec('CREATE TABLE closing_probe (a text PRIMARY KEY, b boolean, c text)');
  });
  afterAll(async () => {
    await db.close();
  });

  it('commits with the statement, and every value arrives exactly as it was given', async () => {
    // More rounds than the pool has connections: the statement is prepared on some and reused on others.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        AWKWARD.map((value, i) =>
          db.transaction(async (tx) => {
            await tx.query('SELECT 1');
            const a = `${round}:${value}`;
            const [row] = await tx.query(CLOSING, [a, i % 2 === 0, i === 0 ? null : value], {
              closing: true,
            });
            // Committed already: another connection sees it before this function returns.
            return { row, seen: await stored(a) };
          }),
        ),
      );
      expect(answers).toEqual(
        AWKWARD.map((value, i) => ({
          row: { a: `${round}:${value}`, b: i % 2 === 0, c: i === 0 ? null : value },
          seen: 1,
        })),
      );
    }
  });

  it('rolls the whole transaction back when the closing statement fails', async () => {
    await db.query(`INSERT INTO closing_probe (a) VALUES ('taken')`);
    await expect(
      db.transaction(async (tx) => {
        await tx.query(`INSERT INTO closing_probe (a) VALUES ('before the failure')`);
        await tx.query(CLOSING, ['taken', true, null], { closing: true });
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await stored('before the failure')).toBe(0);
    // The connection went back to the pool usable, with nothing left open on it.
    const [open] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
    );
    expect(open!.n).toBe(0);
  });

  it('refuses any statement after the closing one', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query(CLOSING, ['closed', false, null], { closing: true });
        await tx.query('SELECT 1');
      }),
    ).rejects.toThrow(/committed by its closing statement/);
    // What the closing statement wrote is committed all the same.
    expect(await stored('closed')).toBe(1);
  });

  it('reruns on a fresh connection when the server lost the prepared statement (a session reset)', async () => {
    // One connection, so the reset meets the statement prepared on it.
    const single = await openServer(url, { max: 1 });
    try {
      await single.transaction((tx) => tx.query(CLOSING, ['prepared', true, null], { closing: true }));
      let attempts = 0;
      await withRetry(() =>
        single.transaction(async (tx) => {
          attempts++;
          await tx.query('DEALLOCATE ALL');
          await tx.query(CLOSING, ['after the reset', false, null], { closing: true });
        }),
      );
      expect(attempts).toBe(2);
      expect(await stored('after the reset')).toBe(1);
      // The fresh connection prepared it again, and goes on using it.
      await single.transaction((tx) => tx.query(CLOSING, ['later', true, null], { closing: true }));
      expect(await stored('later')).toBe(1);
    } finally {
      await single.close();
    }
  });

  it('refuses a value it cannot write as a literal, and writes nothing', async () => {
    await expect(
      db.transaction((tx) => tx.query(CLOSING, ['a number', true, 42], { closing: true })),
    ).rejects.toThrow(/strings, booleans and null only/);
    expect(await stored('a number')).toBe(0);
  });
});
