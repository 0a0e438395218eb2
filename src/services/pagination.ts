/** Keyset cursors: opaque to clients, a page costs the same at any depth. */
import { ServiceError } from './errors.ts';

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export const encodeCursor = (key: (string | number)[]): string =>
  Buffer.from(JSON.stringify(key)).toString('base64url');

export function decodeCursor(cursor: string | undefined, arity: number): (string | number)[] | null {
  if (cursor === undefined) return null;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(key) &&
      key.length === arity &&
      key.every((k) => ['string', 'number'].includes(typeof k))
    ) {
      return key;
    }
  } catch {}
  throw new ServiceError(400, 'invalid_cursor', 'The cursor is not one this API returned', 'cursor');
}

/** Rows fetched with limit + 1 become a page; the last row's key is the next cursor. */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  key: (row: R) => (string | number)[],
  shape: (row: R) => T,
): Page<T> {
  const has_more = rows.length > limit;
  const kept = has_more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { data: kept.map(shape), has_more, next_cursor: has_more && last ? encodeCursor(key(last)) : null };
}
