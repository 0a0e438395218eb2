/**
 * When the kernel's own memory monitor ran during a measurement. On this VM a DAMON thread
 * (`kdamond`, reclaiming memory for the host) samples physical memory every 500 ms and, under
 * load, spends 10 to 20 ms of CPU on each sample; every process on the machine stalls meanwhile.
 * The probe polls the thread's run time (/proc schedstat, in ns) so that a bench can say which of
 * its slow requests were in flight during such a burst. Linux only; elsewhere it finds nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel threads that take the machine's CPU away from every process at once. */
const KERNEL_MONITORS = /^kdamond/;
const POLL_MS = 2;
/** A burst shorter than this is the thread's idle bookkeeping, not a stall. */
const MIN_BURST_MS = 2;

export interface Burst {
  /** performance.now() of the poll before and after the thread ran. */
  from: number;
  to: number;
  cpuMs: number;
}

function monitorThreads(): number[] {
  const found: number[] = [];
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (KERNEL_MONITORS.test(readFileSync(`/proc/${entry}/comm`, 'utf8').trim()))
          found.push(Number(entry));
      } catch {}
    }
  } catch {}
  return found;
}

const runNs = (pid: number): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
};

/** Polls the monitor threads until stopped; answers the bursts in which they ran. */
export function probeKernelMonitors(): { threads: number; stop(): Burst[] } {
  const pids = monitorThreads();
  const bursts: Burst[] = [];
  if (pids.length === 0) return { threads: 0, stop: () => bursts };
  const total = () => pids.reduce((sum, pid) => sum + (runNs(pid) || 0), 0);
  let last = { at: performance.now(), ns: total() };
  const timer = setInterval(() => {
    const now = { at: performance.now(), ns: total() };
    const ranMs = (now.ns - last.ns) / 1e6;
    if (ranMs > 0) {
      const open = bursts.at(-1);
      // Polls in a row where it ran are one burst.
      if (open && open.to === last.at) {
        open.to = now.at;
        open.cpuMs += ranMs;
      } else bursts.push({ from: last.at, to: now.at, cpuMs: ranMs });
    }
    last = now;
  }, POLL_MS);
  return {
    threads: pids.length,
    stop() {
      clearInterval(timer);
      return bursts.filter((b) => b.cpuMs >= MIN_BURST_MS);
    },
  };
}

/**
 * How many of the given [start, end] intervals overlap a burst or the `afterMs` that follow it
 * (requests that arrived meanwhile wait for the queue the burst left behind).
 */
export function overlapping(intervals: [number, number][], bursts: Burst[], afterMs: number): number {
  return intervals.filter(([start, end]) => bursts.some((b) => b.from < end && b.to + afterMs > start))
    .length;
}
