/**
 * Where an interrupted import resumes: after the last batch Tally committed. Kept in a small JSON
 * file beside the input (or where --state says) and removed when the import reaches the end.
 * Resuming is only a shortcut: re-sending committed rows would add nothing either.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';

export interface Checkpoint {
  /** Byte offset and line number just past the last committed row. */
  offset: number;
  line: number;
  /** The file's size when the checkpoint was written: a shorter file now is another file. */
  size: number;
  /** The bytes already imported, sampled (`committedPrefix`): other bytes there are another file. */
  fingerprint: string;
  /** A CSV file's header columns (the resumed part has none). */
  columns: string[] | null;
  counts: ImportCounts;
}

export interface ImportCounts {
  accepted: number;
  duplicate: number;
  rejected: number;
  /** Rows refused before reaching Tally (unreadable, missing fields). */
  invalid: number;
}

export const rowsCounted = (c: ImportCounts): number => c.accepted + c.duplicate + c.rejected + c.invalid;

/** How much of the imported part `committedPrefix` reads: its start, and the end just before the position. */
const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 4 * 1024;

/**
 * A fingerprint of the part of `file` before `offset`: its first 64 KiB and the 4 KiB before
 * `offset`. A file that only grew since (rows appended, a bad row fixed further on) keeps it;
 * another file under the same name does not.
 */
export function committedPrefix(file: string, offset: number): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (const [start, length] of [
      [0, Math.min(HEAD_BYTES, offset)],
      [Math.max(0, offset - TAIL_BYTES), Math.min(TAIL_BYTES, offset)],
    ] as const) {
      const bytes = Buffer.alloc(length);
      const read = readSync(fd, bytes, 0, length, start);
      hash.update(bytes.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('base64url');
}

/** The saved position, if it belongs to this file as it is now; else the import starts over. */
export function readCheckpoint(path: string, file: string, fileSize: number): Checkpoint | null {
  if (!existsSync(path)) return null;
  try {
    const checkpoint = JSON.parse(readFileSync(path, 'utf8')) as Checkpoint;
    if (checkpoint.size > fileSize || checkpoint.offset > fileSize) return null;
    return checkpoint.fingerprint === committedPrefix(file, checkpoint.offset) ? checkpoint : null;
  } catch {
    return null;
  }
}

/** Written to a temporary name then renamed, so a crash never leaves half a checkpoint. */
export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(checkpoint));
  renameSync(`${path}.tmp`, path);
}

export function clearCheckpoint(path: string): void {
  rmSync(path, { force: true });
}
