/** Prefixed random ids (`org_`, `mem_`, `key_`, ...) and secret keys. */
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Random bytes drawn 4 KiB at a time: one call into the CSPRNG serves about 50 ids instead of one. */
let pool = Buffer.alloc(0);
let used = 0;
function randomSlice(length: number): Buffer {
  if (used + length > pool.length) {
    pool = randomBytes(Math.max(4096, length));
    used = 0;
  }
  used += length;
  return pool.subarray(used - length, used);
}

function randomText(length: number): string {
  const bytes = randomSlice(length * 2);
  let out = '';
  // Rejection sampling keeps every character equally likely.
  for (let i = 0; out.length < length && i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out.length === length ? out : out + randomText(length - out.length);
}

export type IdPrefix =
  | 'org'
  | 'mem'
  | 'ws'
  | 'key'
  | 'op'
  | 'req'
  | 'grt'
  | 'auth'
  | 'bud'
  | 'alt'
  | 'we'
  | 'msg'
  | 'wrk';

export const newId = (prefix: IdPrefix): string => `${prefix}_${randomText(20)}`;

/** Whether an id looks like one newId makes with that prefix. */
export const hasPrefix = (id: string, prefix: IdPrefix): boolean => id.startsWith(`${prefix}_`);

/** A secret API key. Only its hash is stored; the prefix tells operator keys from org keys. */
export const newSecret = (kind: 'op' | 'sk'): string => `tally_${kind}_${randomText(40)}`;

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');
