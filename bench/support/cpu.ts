/**
 * Where the machine's CPU went during a measurement, from /proc (Linux): the whole machine, this
 * Node.js process, and given processes (the Postgres server's backends), all in cores busy.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CpuSnapshot {
  at: number;
  machine: { busy: number; total: number };
  node: NodeJS.CpuUsage;
  pids: Map<number, number>;
  clients: Map<number, number>;
}

export interface CpuFigures {
  /** Cores busy on the whole machine. */
  machine: number;
  node: number;
  /** The given processes (NaN when none were given or /proc cannot tell). */
  others: number;
  /** The load generator's process (NaN when it runs in this process). */
  clients: number;
  /** Everything else running on the machine meanwhile. */
  rest: number;
}

function machineTicks(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - fields[3]! - (fields[4] ?? 0), total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/** utime + stime of a process in clock ticks, or NaN when it is gone or not local. */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return Number.NaN;
  }
}

const ticksOf = (pids: number[]) => new Map(pids.map((pid) => [pid, processTicks(pid)]));

/** `clients`: the processes of a load generator, counted apart from the rest of the machine. */
export function cpuSnapshot(pids: number[] = [], clients: number[] = []): CpuSnapshot {
  return {
    at: performance.now(),
    machine: machineTicks(),
    node: process.cpuUsage(),
    pids: ticksOf(pids),
    clients: ticksOf(clients),
  };
}

/** Ticks the processes of `after` used since `before` (new ones from zero; gone ones left out). */
function ticksSince(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, now] of after) {
    if (Number.isFinite(now)) ticks += now - (before.get(pid) ?? 0);
  }
  return ticks;
}

/** CPU used between `before` and now; `pids` are the processes to count now (new ones from zero). */
export function cpuSince(before: CpuSnapshot, pids: number[] = []): CpuFigures {
  const after = cpuSnapshot(pids, [...before.clients.keys()]);
  const cores = availableParallelism();
  const ticksPerCore = (after.machine.total - before.machine.total) / cores;
  const machine = (after.machine.busy - before.machine.busy) / ticksPerCore;
  const nodeUsage = process.cpuUsage(before.node);
  const node = (nodeUsage.user + nodeUsage.system) / 1000 / (after.at - before.at);
  const others = pids.length > 0 ? ticksSince(before.pids, after.pids) / ticksPerCore : Number.NaN;
  const clients =
    before.clients.size > 0 ? ticksSince(before.clients, after.clients) / ticksPerCore : Number.NaN;
  const known = [node, others, clients].filter(Number.isFinite).reduce((a, b) => a + b, 0);
  return { machine, node, others, clients, rest: machine - known };
}

/**
 * Time this process's main thread has spent runnable but waiting for a core, in ms (/proc
 * schedstat, Linux; NaN elsewhere): when it grows as fast as the clock, the event loop is
 * starved by the rest of the machine, not busy with its own work.
 */
export function mainThreadWaitMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return Number.NaN;
  }
}
