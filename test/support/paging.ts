/** Reading a cursor-paginated list to its end, as the API tests do. */
import { expect } from 'vitest';
import type { TestTally } from './harness.ts';

interface Paged {
  has_more: boolean;
  next_cursor: string | null;
}

/**
 * Every page of a paginated GET, first to last: each answers 200 and is read with `parse` (the
 * route's schema); the last has no next cursor. Fails when the pages do not end within `maxPages`.
 */
export async function everyPage<P extends Paged>(
  t: TestTally,
  path: string,
  key: string | undefined,
  parse: (body: unknown) => P,
  maxPages = 100,
): Promise<P[]> {
  const pages: P[] = [];
  const sep = path.includes('?') ? '&' : '?';
  let cursor: string | null = null;
  for (let n = 0; n < maxPages; n++) {
    const r = await t.call('GET', `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, {
      key,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const page = parse(r.body);
    pages.push(page);
    if (!page.has_more) {
      expect(page.next_cursor).toBeNull();
      return pages;
    }
    cursor = page.next_cursor;
  }
  throw new Error(`${path}: the pages did not end within ${maxPages}`);
}
