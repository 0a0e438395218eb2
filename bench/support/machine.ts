/** What the figures were measured on: CPU, cores, memory, Node, Postgres, commit. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  commit: string;
  dirty: boolean;
  date: string;
  /** 1-minute load average when the run started: other work on the machine skews figures. */
  load: number;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** The Node.js version with the flags it runs under (tsx's own loader options left out). */
function nodeWithFlags(): string {
  const flags = process.execArgv.filter((arg, i, all) => {
    const loaderOption = (a: string | undefined) => a === '--require' || a === '--import';
    return arg.startsWith('--') && !loaderOption(arg) && !loaderOption(all[i - 1]);
  });
  return flags.length ? `${process.version} (${flags.join(' ')})` : process.version;
}

export function machine(): Machine {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    ramGiB: Math.round(totalmem() / 2 ** 30),
    node: nodeWithFlags(),
    commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--', 'src']) !== '',
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    load: loadavg()[0]!,
  };
}
