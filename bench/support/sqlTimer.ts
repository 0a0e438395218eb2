/**
 * Wraps a Db so every statement is timed by what it does ("INSERT events", "SELECT orgs", ...),
 * without touching src/: this is how the benches see where the time of a request goes.
 */
import type { Db, Queryable } from '../../src/store/db.ts';

export interface StatementStats {
  label: string;
  count: number;
  ms: number;
}

export class SqlTimer {
  private stats = new Map<string, StatementStats>();

  reset(): void {
    this.stats.clear();
  }

  snapshot(): StatementStats[] {
    return [...this.stats.values()].sort((a, b) => b.ms - a.ms);
  }

  record(label: string, ms: number): void {
    const entry = this.stats.get(label) ?? { label, count: 0, ms: 0 };
    entry.count += 1;
    entry.ms += ms;
    this.stats.set(label, entry);
  }

  private timed(target: Queryable, prefix: string): Queryable {
    return {
      query: async (sql, params, statement) => {
        const started = performance.now();
        try {
          return await target.query(sql, params, statement);
        } finally {
          this.record(prefix + labelOf(sql), performance.now() - started);
        }
      },
      exec: (sql) => target.exec(sql),
    };
  }

  wrap(db: Db): Db {
    return {
      kind: db.kind,
      ...this.timed(db, ''),
      read: this.timed(db.read, 'read: '),
      transaction: async (fn) => {
        const started = performance.now();
        try {
          return await db.transaction((tx) => fn(this.timed(tx, '  tx: ')));
        } finally {
          this.record('transaction (whole, incl. BEGIN/COMMIT and waits)', performance.now() - started);
        }
      },
      close: () => db.close(),
      ...(db.dump ? { dump: db.dump } : {}),
    };
  }
}

/** "INSERT INTO events (...) SELECT ... FROM jsonb_to_recordset" -> "INSERT events". */
export function labelOf(sql: string): string {
  const text = sql.replace(/\s+/g, ' ').trim();
  const write = text.match(/^(INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)/i);
  if (write) return `${write[1]!.split(' ')[0]!.toUpperCase()} ${write[2]}`;
  const read = text.match(/^SELECT .*? FROM\s+(\w+)/i);
  if (read) return `SELECT ${read[1]}`;
  return text.slice(0, 40);
}
