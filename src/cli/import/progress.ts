/**
 * Import progress on stderr: a bar redrawn in place on a terminal, else (a log, a pipe) one line
 * every few seconds.
 */
import type { Output } from '../command.ts';

const BAR_WIDTH = 30;

export class Progress {
  private readonly started = performance.now();
  private lastDraw = this.started;

  constructor(
    private readonly out: Output,
    private readonly totalBytes: number,
    private readonly intervalMs = out.isTTY ? 200 : 5_000,
  ) {}

  /** Rows done so far and the byte offset reached; draws when it is time to. */
  update(rows: number, bytes: number, force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    const share = this.totalBytes > 0 ? Math.min(1, bytes / this.totalBytes) : 1;
    const percent = Math.floor(share * 100);
    const rate = rowsPerSecond(rows, now - this.started);
    if (this.out.isTTY) {
      const filled = Math.round(share * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
      this.out.write(`\r[${bar}] ${String(percent).padStart(3)}%  ${rows} rows  ${rate} rows/s`);
    } else {
      this.out.write(`import: ${rows} rows, ${percent}% of the file, ${rate} rows/s\n`);
    }
  }

  /** A message on its own line, clearing a partly drawn bar first. */
  message(text: string): void {
    if (!this.out.isTTY) {
      this.out.write(`${text}\n`);
      return;
    }
    this.out.write(`\r\x1b[K${text}\n`);
    // Redraw the bar under the message at the next update.
    this.lastDraw = 0;
  }

  /** Ends the bar's line so later messages start on their own. */
  done(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}

export function rowsPerSecond(rows: number, ms: number): number {
  return ms > 0 ? Math.round((rows * 1000) / ms) : 0;
}
