/**
 * JSON values Postgres cannot store, and nesting that would exhaust the stack: the NUL character
 * (text and jsonb reject it), unpaired UTF-16 surrogates (jsonb rejects them) and absurd depth.
 * Checked wherever JSON comes in (the API's bodies, the gateway's, import files), so such a value
 * is refused with the field at fault instead of failing in the database.
 */
export const MAX_JSON_DEPTH = 32;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether brackets outside strings nest deeper than `max`, in one pass over the text. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++;
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max) return true;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return false;
}

function textFault(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (LONE_SURROGATE.test(text)) return 'must be valid Unicode text (it has an unpaired surrogate)';
  return null;
}

const join = (path: string, key: string | number) =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

/** The first value (or key) that cannot be stored, with its path written like `events[0].metadata.x`. */
export function findJsonFault(
  value: unknown,
  path = '',
  depth = 0,
): { param: string; message: string } | null {
  if (typeof value === 'string') {
    const fault = textFault(value);
    return fault ? { param: path, message: fault } : null;
  }
  if (value === null || typeof value !== 'object') return null;
  if (depth >= MAX_JSON_DEPTH) {
    return { param: path, message: `must not nest more than ${MAX_JSON_DEPTH} levels deep` };
  }
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    if (typeof key === 'string') {
      const fault = textFault(key);
      if (fault) return { param: join(path, key), message: `has a name that ${fault}` };
    }
    const found = findJsonFault(child, join(path, key), depth + 1);
    if (found) return found;
  }
  return null;
}
