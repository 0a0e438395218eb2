import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Provider } from '@pydantic/genai-prices';
import { CliError, type Command, requiredOption, stringOption } from '../command.ts';
import { withTally } from '../runtime.ts';

/** The genai-prices data file is a JSON array of providers, each with an id and its models. */
function readProviders(path: string): Provider[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CliError(`${path}: not a readable JSON file (${(error as Error).message})`);
  }
  if (!Array.isArray(data)) throw new CliError(`${path}: expected a JSON array of providers`);
  data.forEach((provider, i) => {
    if (typeof provider?.id !== 'string' || !Array.isArray(provider.models)) {
      throw new CliError(`${path}: provider ${i} has no "id" and "models" list`);
    }
  });
  return data as Provider[];
}

export const pricesRefreshCommand: Command = {
  name: 'prices refresh',
  summary: 'Load a newer genai-prices data file into the versioned provider cost catalog.',
  usage: '--file FILE [--version VERSION]',
  details: [
    'FILE is the data.json of github.com/pydantic/genai-prices (a JSON array of providers).',
    'A model whose price changed gets a new price row starting now; events priced before keep theirs.',
    'Loading the same version again changes nothing.',
  ].join('\n'),
  options: {
    file: { type: 'string', value: 'FILE', description: 'The genai-prices data file' },
    version: {
      type: 'string',
      value: 'VERSION',
      description: 'Name of this catalog version (default: file- and the first 12 hex of its SHA-256)',
    },
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const path = requiredOption(args, 'file');
    const providers = readProviders(path);
    const version =
      stringOption(args, 'version') ??
      `file-${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12)}`;
    const { loadCatalog } = await import('../../services/pricing/loadCatalog.ts');
    const result = await withTally(io, async ({ tally }) => {
      try {
        return await loadCatalog(tally.db, { providers, version });
      } catch (error) {
        if (error instanceof RangeError) throw new CliError(`${path}: ${error.message}`);
        throw error;
      }
    });
    const models = providers.reduce((n, p) => n + p.models.length, 0);
    io.stdout.write(
      result.loaded
        ? `Catalog version ${result.version} loaded: ${models} models, ${result.inserted} new price rows.\n`
        : `Catalog version ${result.version} is already loaded; nothing changed.\n`,
    );
    return 0;
  },
};
