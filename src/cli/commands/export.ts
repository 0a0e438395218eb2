import { EventEmitter, once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { RANGES, type RangeName } from '../../domain/ranges.ts';
import {
  EXPORT_COLUMNS,
  EXPORT_FORMATS,
  type ExportFormat,
  exportUsage,
} from '../../services/usage/exportUsage.ts';
import { FILTERS, type UsageQuery } from '../../services/usage/scope.ts';
import {
  type Command,
  type OptionSpec,
  type Output,
  requiredOption,
  stringOption,
  UsageError,
} from '../command.ts';
import { operatorCtx, withTally } from '../runtime.ts';

const filterOptions = Object.fromEntries(
  FILTERS.map((name) => [
    name,
    { type: 'string', value: 'VALUE', description: `Only usage with this ${name}` },
  ]),
) as Record<string, OptionSpec>;

export const exportCommand: Command = {
  name: 'export',
  summary: "Export an organization's usage events for a range, oldest first, to stdout or a file.",
  usage: '--org ORG [--range RANGE | --from FROM --to TO] [--format FORMAT] [--out FILE]',
  details: `Columns: ${EXPORT_COLUMNS.join(', ')}.\nAmounts are exact decimal strings. Streams in constant memory, whatever the size.`,
  options: {
    org: { type: 'string', value: 'ORG', description: 'The organization id (org_...)' },
    format: { type: 'string', value: 'FORMAT', description: `${EXPORT_FORMATS.join(', ')} (default csv)` },
    range: { type: 'string', value: 'RANGE', description: `${RANGES.join(', ')} (default 30d)` },
    from: {
      type: 'string',
      value: 'FROM',
      description: 'Start: RFC 3339 time or YYYY-MM-DD in the org time zone',
    },
    to: { type: 'string', value: 'TO', description: 'End (exclusive time, or inclusive date)' },
    out: { type: 'string', short: 'o', value: 'FILE', description: 'Write to this file instead of stdout' },
    ...filterOptions,
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const orgId = requiredOption(args, 'org');
    const format = stringOption(args, 'format') ?? 'csv';
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
    }
    const range = stringOption(args, 'range');
    if (range !== undefined && !(RANGES as readonly string[]).includes(range)) {
      throw new UsageError(`--range must be one of ${RANGES.join(', ')}`);
    }
    const query: UsageQuery = {
      range: range as RangeName | undefined,
      from: stringOption(args, 'from'),
      to: stringOption(args, 'to'),
      ...Object.fromEntries(FILTERS.map((name) => [name, stringOption(args, name)])),
    };
    const path = stringOption(args, 'out');
    await withTally(io, async (opened) => {
      const { stream } = await exportUsage(
        operatorCtx(opened, 'cli-export'),
        orgId,
        query,
        format as ExportFormat,
      );
      if (!path) {
        // A chunk may end inside a multi-byte character: decode as one stream.
        const decoder = new TextDecoder();
        for await (const chunk of stream) await writeOut(io.stdout, decoder.decode(chunk, { stream: true }));
        await writeOut(io.stdout, decoder.decode());
        return;
      }
      const file = createWriteStream(path);
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += chunk.byteLength;
        if (!file.write(chunk)) await once(file, 'drain');
      }
      file.end();
      await once(file, 'finish');
      io.stderr.write(`Wrote ${bytes} bytes to ${path}.\n`);
    });
    return 0;
  },
};

/** Writes and, when the output is a stream that asks to wait (a pipe), waits for it to drain. */
async function writeOut(out: Output, text: string): Promise<void> {
  if (out.write(text) === false && out instanceof EventEmitter) await once(out, 'drain');
}
