/**
 * Opening Tally for a command, and acting as the operator (the CLI runs beside the database).
 * The server modules load only when a command needs them, so `--help` answers at once.
 */
import type { Config } from '../config.ts';
import type { Ctx } from '../services/context.ts';
import { CliError, type CliIo, type OpenedTally } from './command.ts';

/** The configuration from the command's environment; a bad value is a CliError naming it. */
export async function loadCliConfig(io: CliIo): Promise<Config> {
  const { ConfigError, loadConfig } = await import('../config.ts');
  try {
    return loadConfig({ TALLY_LOG: 'off', ...io.env });
  } catch (error) {
    throw error instanceof ConfigError ? new CliError(error.message) : error;
  }
}

export async function openTally(io: CliIo): Promise<OpenedTally> {
  if (io.openTally) return io.openTally();
  const config = await loadCliConfig(io);
  const { prepare } = await import('../server.ts');
  const tally = await prepare(config);
  if (tally.generatedOperatorKey) {
    io.stderr.write(
      `Operator key (generated now, shown once, keep it safe): ${tally.generatedOperatorKey}\n`,
    );
  }
  return { tally, close: () => tally.db.close() };
}

/** Runs `fn` with Tally open, and closes it whatever happens. */
export async function withTally<T>(io: CliIo, fn: (opened: OpenedTally) => Promise<T>): Promise<T> {
  const opened = await openTally(io);
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

export function operatorCtx({ tally }: OpenedTally, requestId: string): Ctx {
  return {
    db: tally.db,
    config: tally.config,
    prices: tally.prices,
    principal: { kind: 'operator', id: 'op_cli' },
    requestId,
  };
}
