import type { Command } from '../command.ts';
import { stringOption } from '../command.ts';

export const startCommand: Command = {
  name: 'start',
  summary: 'Start the Tally server (API, dashboard, background jobs), as `npm start` does.',
  usage: '[--port PORT] [--host HOST]',
  details:
    'Reads its configuration from the environment (PORT, HOST, DATABASE_URL, TALLY_DATA_DIR, TALLY_ADMIN_KEY, ...; see the README). Stops on SIGINT or SIGTERM.',
  options: {
    port: {
      type: 'string',
      short: 'p',
      value: 'PORT',
      description: 'Listen on this port (default $PORT or 4100)',
    },
    host: { type: 'string', value: 'HOST', description: 'Listen on this address (default $HOST or 0.0.0.0)' },
  },
  positionals: { min: 0, max: 0 },
  async run(args) {
    const port = stringOption(args, 'port');
    const host = stringOption(args, 'host');
    if (port) process.env.PORT = port;
    if (host) process.env.HOST = host;
    // As `npm start`: build the web app when it is missing or older than its sources.
    const { ensureWebBuilt } = await import('../../../web/scripts/ensureBuilt.ts');
    await ensureWebBuilt();
    // The server entry point runs on import and keeps the process alive until a signal.
    await import('../../main.ts');
    return new Promise<number>(() => {});
  },
};
