/** The contract between the runner (bench/run.ts) and each benchmark module. */

/** One figure: several runs of the same measurement, optionally beside a physical baseline. */
export interface Measurement {
  benchmark: string;
  database: 'PGlite' | 'Postgres server' | string;
  unit: string;
  /** One value per run; the table shows the median, min and max. */
  runs: number[];
  /** Higher is better (throughput) or lower is better (latency). */
  better: 'higher' | 'lower';
  /** What the same work costs at the physical limit (e.g. raw COPY of the same rows). */
  baseline?: { label: string; runs: number[] };
  /** The figure the median must reach. */
  target?: number;
}

/** Free-form findings a module wants in BENCHMARKS.md (per-phase timings, profiles, notes). */
export interface Section {
  title: string;
  lines: string[];
}

export interface BenchResult {
  measurements: Measurement[];
  sections: Section[];
}

export interface BenchOptions {
  /** BENCH_QUICK=1: small sizes, for a smoke run. */
  quick: boolean;
  /** Which databases to measure on (BENCH_DB=embedded|server|both). */
  databases: ('embedded' | 'server')[];
  /** Admin URL of the Postgres server; fresh databases are created beside it. */
  serverUrl: string;
  /** BENCH_PROFILE=1: one extra profiled run with a CPU profile summary. */
  profile: boolean;
  log: (line: string) => void;
}

export interface BenchModule {
  /** Short id, used on the command line: `npm run bench -- ingest`. */
  name: string;
  /** One paragraph for BENCHMARKS.md: what is measured and how. */
  description: string;
  run(options: BenchOptions): Promise<BenchResult>;
}
