/** One JSON line per request or failure. Secrets never reach it: only key ids are logged. */
export interface Logger {
  info(fields: Record<string, unknown>): void;
  error(fields: Record<string, unknown>): void;
}

export function jsonLogger(enabled: boolean): Logger {
  const write = (level: string, fields: Record<string, unknown>) => {
    if (enabled)
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, ...fields })}\n`);
  };
  return { info: (f) => write('info', f), error: (f) => write('error', f) };
}
