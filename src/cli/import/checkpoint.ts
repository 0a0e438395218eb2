/**
 * Where an interrupted import resumes: after the last batch Tally committed. Kept in a small JSON
 * file beside the input (or where --state says) and removed when the import reaches the end.
 * Resuming is only a shortcut: re-sending committed rows would add nothing either.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

export interface Checkpoint {
  /** Byte offset and line number just past the last committed row. */
  offset: number;
  line: number;
  /** The file's size when the checkpoint was written: a shorter file now is another file. */
  size: number;
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

export function readCheckpoint(path: string, fileSize: number): Checkpoint | null {
  if (!existsSync(path)) return null;
  try {
    const checkpoint = JSON.parse(readFileSync(path, 'utf8')) as Checkpoint;
    return checkpoint.size <= fileSize && checkpoint.offset <= fileSize ? checkpoint : null;
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
