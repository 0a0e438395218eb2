/**
 * On the Postgres server, a transaction whose first statement may open it (`opening`, the spend
 * lock) sends BEGIN and that statement in one message, its parameters written in as literals
 * (src/store/db.ts). Postgres gives every statement of one message the same statement_timestamp(),
 * and now() is the transaction's start: they are equal only when BEGIN came in the same message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.ts';
import { freshDb, onServer } from './support/harness.ts';

const OPENING = `INSERT INTO opening_probe (a, b) VALUES ($1, $2)
  RETURNING a, b, now() = statement_timestamp() AS one_message`;

/** Values a careless quoting would break or turn into SQL. */
const AWKWARD = [
  "O'Brien",
  'back\\slash \\x27',
  "'); DROP TABLE opening_probe; --",
  '$2 $1 $$',
  'ünïcödé ✓',
  '',
];

describe.runIf(onServer)('a transaction opened by its first statement on the Postgres server', () => {
  let db: Db;
  beforeAll(async () => {
    db = (await freshDb()).db;
    await db.exec('CREATE TABLE opening_probe (a text, b text)');
  });
  afterAll(async () => {
    await db.close();
  });

  it('sends BEGIN with the statement, and every value arrives exactly as it was given', async () => {
    for (const value of AWKWARD) {
      const [row] = await db.transaction((tx) =>
        tx.query<{ a: string; b: string | null; one_message: boolean }>(OPENING, [value, null], {
          opening: true,
        }),
      );
      expect(row).toEqual({ a: value, b: null, one_message: true });
    }
    const stored = await db.query<{ a: string }>('SELECT a FROM opening_probe ORDER BY a');
    expect(stored.map((r) => r.a)).toEqual([...AWKWARD].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
  });

  it('sends BEGIN on its own before any other first statement', async () => {
    const [row] = await db.transaction((tx) => tx.query<{ one_message: boolean }>(OPENING, ['plain', 'b']));
    expect(row!.one_message).toBe(false);
  });

  it('rolls the opening statement back when the transaction fails', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query(OPENING, ['rolled back', null], { opening: true });
        throw new Error('the caller gives up');
      }),
    ).rejects.toThrow('the caller gives up');
    await expect(
      db.transaction((tx) =>
        tx.query(OPENING, ['bad', 'x'.repeat(10)], { opening: true }).then(() => tx.query('SELECT 1/0')),
      ),
    ).rejects.toThrow(/division by zero/);
    const [count] = await db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM opening_probe WHERE a = ANY($1)',
      [['rolled back', 'bad']],
    );
    expect(count!.n).toBe('0');
  });

  it('refuses what it cannot write as a literal, before sending anything', async () => {
    await expect(db.transaction((tx) => tx.query(OPENING, [42, null], { opening: true }))).rejects.toThrow(
      /strings, booleans and null only/,
    );
    await expect(
      db.transaction((tx) => tx.query("SELECT $1 || 'x'", ['a'], { opening: true })),
    ).rejects.toThrow(/literals of its own/);
    await expect(
      db.transaction((tx) =>
        tx.query('SELECT $1::text AS a, $2::text AS b', ['only one'], { opening: true }),
      ),
    ).rejects.toThrow(/no such parameter/);
  });
});
