/** Opening Tally for a command, and acting as the operator (the CLI runs beside the database). */
import { loadConfig } from '../config.ts';
import { prepare } from '../server.ts';
import type { Ctx } from '../services/context.ts';
import type { CliIo, OpenedTally } from './command.ts';

export async function openTally(io: CliIo): Promise<OpenedTally> {
  if (io.openTally) return io.openTally();
  const tally = await prepare(loadConfig({ TALLY_LOG: 'off', ...io.env }));
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
