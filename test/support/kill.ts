/**
 * kill -9 of a Tally process started by test/support/processes.ts. `tsx` runs the server in a child
 * node process, and SIGKILL cannot be relayed: killing only the tsx pid would leave the server
 * listening. So the whole tree dies, children first, without any chance to clean up.
 */
import { readdirSync, readFileSync } from 'node:fs';

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the parent pid follows the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** SIGKILL to `pid` and all its descendants; resolves once none of them is alive. */
export async function killTree(pid: number): Promise<void> {
  const tree: number[] = [];
  const walk = (p: number) => {
    for (const child of childrenOf(p)) walk(child);
    tree.push(p);
  };
  walk(pid);
  for (const p of tree) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
  for (const p of tree) {
    while (isAlive(p)) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether the process still runs (a zombie, killed but not yet reaped, does not). */
export function isAlive(pid: number): boolean {
  try {
    // A zombie (killed, not yet reaped by its parent) no longer serves anything.
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}
