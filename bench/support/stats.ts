/** Summaries and number formatting for bench tables. */

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const min = (values: number[]) => Math.min(...values);
export const max = (values: number[]) => Math.max(...values);

/** 12345.6 -> "12 346"; small figures keep a few significant digits. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 100 || Number.isInteger(value))
    return Math.round(value).toLocaleString('en-US').replace(/,/g, ' ');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}
