/**
 * Reruns a transaction that Postgres aborted for a deadlock or a serialization failure, or that
 * met a connection whose prepared statements were reset under it (db.ts closes that connection).
 */
const RETRYABLE = new Set(['40P01', '40001', '26000', '42P05']);

export async function withRetry<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= attempts || !code || !RETRYABLE.has(code)) throw error;
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.floor(Math.random() * 10)));
    }
  }
}
