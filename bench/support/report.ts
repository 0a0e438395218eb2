/** The one console table of a bench run, and BENCHMARKS.md. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BenchModule, BenchResult, Measurement } from '../types.ts';
import type { Machine } from './machine.ts';
import { fmt, max, median, min } from './stats.ts';

export const COLUMNS = [
  'benchmark',
  'database',
  'median',
  'min',
  'max',
  'unit',
  'baseline',
  'ratio',
] as const;

export function row(m: Measurement): string[] {
  const base = m.baseline ? median(m.baseline.runs) : Number.NaN;
  const value = median(m.runs);
  return [
    m.benchmark,
    m.database,
    fmt(value),
    fmt(min(m.runs)),
    fmt(max(m.runs)),
    m.unit,
    m.baseline ? `${fmt(base)} (${m.baseline.label})` : '-',
    m.baseline ? `${((value / base) * 100).toFixed(1)} %` : '-',
  ];
}

export function targetLine(m: Measurement): string | null {
  if (m.target === undefined) return null;
  const value = median(m.runs);
  const met = m.better === 'higher' ? value >= m.target : value <= m.target;
  const gap = m.better === 'higher' ? value / m.target : m.target / value;
  return `${m.benchmark} on ${m.database}: target ${m.better === 'higher' ? '>=' : '<='} ${fmt(m.target)} ${m.unit}: ${
    met ? 'met' : `MISSED`
  } (${fmt(value)}, ${(gap * 100).toFixed(0)} % of target)`;
}

export function consoleTable(measurements: Measurement[]): string {
  const rows = [COLUMNS.map(String), ...measurements.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const numeric = new Set([2, 3, 4, 7]);
  const line = (r: string[]) =>
    r.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function markdownTable(measurements: Measurement[]): string[] {
  const header = [...COLUMNS, 'target'];
  const out = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const m of measurements) {
    const target = m.target === undefined ? '-' : `${m.better === 'higher' ? '>=' : '<='} ${fmt(m.target)}`;
    out.push(`| ${[...row(m), target].join(' | ')} |`);
  }
  return out;
}

const START = (name: string) => `<!-- bench:${name}:start -->`;
const END = (name: string) => `<!-- bench:${name}:end -->`;

/** The section of one module: its table and findings, with when and where it was measured. */
function moduleSection(module: BenchModule, result: BenchResult, m: Machine, quick: boolean): string {
  const lines = [
    START(module.name),
    `## ${module.name}`,
    '',
    module.description,
    '',
    // Sections kept from earlier runs may come from another machine: each names its own.
    `Measured ${m.date} at commit \`${m.commit}\`${m.dirty ? ' (with uncommitted changes in src/)' : ''} on ${m.cpu}, ${m.cores} cores, Node.js ${m.node}${
      quick ? ', quick mode (BENCH_QUICK=1: small sizes)' : ''
    }.`,
    '',
    ...markdownTable(result.measurements),
    '',
    ...result.measurements.flatMap((x) => {
      const t = targetLine(x);
      return t ? [`- ${t}`] : [];
    }),
  ];
  for (const section of result.sections) lines.push('', `### ${section.title}`, '', ...section.lines);
  lines.push(END(module.name));
  return lines.join('\n');
}

/**
 * Rewrites BENCHMARKS.md: the machine header and the sections of the modules just run; sections
 * of modules not run this time are kept as they were (each says when it was measured).
 */
export function writeBenchmarksMd(
  file: string,
  machine: Machine,
  postgres: Record<string, string>,
  modules: BenchModule[],
  results: Map<string, BenchResult>,
  quick: boolean,
): void {
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = (name: string) => {
    const at = previous.indexOf(START(name));
    const end = previous.indexOf(END(name));
    return at >= 0 && end > at ? previous.slice(at, end + END(name).length) : null;
  };
  const sections = modules
    .map((module) => {
      const result = results.get(module.name);
      return result ? moduleSection(module, result, machine, quick) : kept(module.name);
    })
    .filter((s): s is string => s !== null);
  const text = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.ts); the figures below are real measurements, not goals.',
    '',
    '## Machine of the last run',
    '',
    'Each section names the machine it was measured on; sections not rerun keep theirs.',
    '',
    `- CPU: ${machine.cpu}, ${machine.cores} cores`,
    `- RAM: ${machine.ramGiB} GiB`,
    `- Node.js: ${machine.node}`,
    ...Object.entries(postgres).map(([where, version]) => `- ${where}: ${version}`),
    `- Last run: ${machine.date}, commit \`${machine.commit}\`; 1-minute load average at its start: ${machine.load.toFixed(2)}`,
    '',
    '## How to run',
    '',
    '```sh',
    'npm run bench                 # every benchmark, full sizes; rewrites BENCHMARKS.md',
    'npm run bench -- ingest       # one benchmark by name',
    'BENCH_QUICK=1 npm run bench   # small sizes, a smoke run (prints only, unless BENCH_WRITE=1)',
    'BENCH_DB=embedded npm run bench   # only PGlite (or BENCH_DB=server)',
    'BENCH_PROFILE=0 npm run bench     # skip the extra CPU-profiled run',
    'BENCH_PROFILE_DIR=/tmp/profiles npm run bench -- ingest   # also save each profile (.cpuprofile)',
    '```',
    '',
    'The Postgres server is `TALLY_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);',
    'each run creates its own database `tally_bench_<pid>_<n>` there and drops it afterwards.',
    '',
    '## Targets',
    '',
    '- Ingest: >= 20 000 events/s on the Postgres server, >= 5 000 events/s on embedded PGlite',
    '  (batches of 1 000 over HTTP, pricing, idempotency and rollups on); with the ledger on, at least',
    '  80 % of the rate with it off.',
    '- Hold round trip over HTTP on the Postgres server: p99 <= 5 ms at 500 holds a second.',
    '- Usage dashboards on 10 million events: p95 of each answer <= 50 ms (a list page <= 10 ms) on',
    '  the server, <= 300 ms on PGlite.',
    '- Gateway: p99 added latency <= 10 ms at 200 concurrent streams.',
    '- Web app: JavaScript <= 250 KB gzipped; the overview fully rendered within 1 500 ms.',
    '',
    'Each section says under its table which targets its figures met and which they missed.',
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
  writeFileSync(file, text);
  formatWithBiome(file);
}

/** `npm run lint` checks Markdown too: the file is written in the project's own format. */
function formatWithBiome(file: string): void {
  const require = createRequire(import.meta.url);
  const biome = require.resolve('@biomejs/biome/bin/biome');
  try {
    execFileSync(process.execPath, [biome, 'format', '--write', file], { stdio: 'ignore' });
  } catch {
    process.stderr.write(`biome could not format ${file}; run npx biome format --write ${file}\n`);
  }
}
