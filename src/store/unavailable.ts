/** Errors that mean the database cannot be reached right now, as opposed to a refusal of one statement. */
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '53300']);
const NET_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);
/** pg's own errors for a connection the server cut (a restart): no SQLSTATE, only the message. */
const CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error|Client was closed)/;

/** Whether an error means the database cannot be reached now (a restart, a failover): retry shortly. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (code) return PG_UNAVAILABLE.has(code) || NET_UNAVAILABLE.has(code);
  return error instanceof Error && CONNECTION_LOST.test(error.message);
}
