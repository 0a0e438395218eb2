/** Keyset cursors: opaque to clients, a page costs the same at any depth. */
import { inYears } from '../domain/calendar.ts';
import { ServiceError } from './errors.ts';

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/**
 * An instant as cursors carry it: to the microsecond Postgres keeps (a JS Date keeps
 * milliseconds, and a cursor cut to them skips the rows later in the same millisecond).
 */
export const cursorTime = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export const encodeCursor = (key: (string | number)[]): string =>
  Buffer.from(JSON.stringify(key)).toString('base64url');

/**
 * What each position of a cursor holds. A cursor is the client's input: every part is checked
 * before it reaches SQL, where a failed cast would answer 500 instead of 400.
 */
export type CursorPart = 'text' | 'integer' | 'digits' | 'time';

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

const FITS: Record<CursorPart, (value: unknown) => boolean> = {
  // A NUL would fail in Postgres: no text there can hold one.
  text: (value) => typeof value === 'string' && value.length <= 1000 && !value.includes('\u0000'),
  /** A bigint key (sequence numbers), as a number or as digits. */
  integer: (value) =>
    (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
    (typeof value === 'string' && /^\d{1,18}$/.test(value)),
  /** A non-negative NUMERIC key, as digits. */
  digits: (value) => typeof value === 'string' && /^\d{1,40}$/.test(value),
  /** An instant as the API writes it; a day that does not exist (Feb 31) is refused, not rolled over. */
  time: (value) =>
    typeof value === 'string' &&
    TIME.test(value) &&
    Number.isFinite(Date.parse(value)) &&
    inYears(new Date(value)) &&
    new Date(value).toISOString().slice(0, 19) === value.slice(0, 19),
};

export function decodeCursor(cursor: string | undefined, parts: CursorPart[]): (string | number)[] | null {
  if (cursor === undefined) return null;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === parts.length && parts.every((part, i) => FITS[part](key[i]))) {
      return key as (string | number)[];
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
