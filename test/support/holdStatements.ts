import type { Queryable } from '../../src/store/db.ts';

/**
 * The hold statements `db` sends while `work` runs, in order: 'one' (tally_place_hold) or 'batch'
 * (tally_place_holds), and what `work` answered.
 */
export async function holdStatements<T>(
  db: Queryable,
  work: () => Promise<T>,
): Promise<{ statements: string[]; result: T }> {
  const statements: string[] = [];
  const query = db.query.bind(db);
  db.query = ((sql: string, ...rest: unknown[]) => {
    if (sql.includes('tally_place_hold'))
      statements.push(sql.includes('tally_place_holds') ? 'batch' : 'one');
    return (query as (...a: unknown[]) => unknown)(sql, ...rest);
  }) as typeof db.query;
  try {
    return { statements, result: await work() };
  } finally {
    db.query = query;
  }
}
