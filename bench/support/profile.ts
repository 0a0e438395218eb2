/**
 * A CPU profile of this process around some work (node:inspector), summarised by where the time
 * went: Tally's own files, each package, PGlite's WebAssembly, the garbage collector, idle.
 * With BENCH_PROFILE_DIR set, the whole profile is also saved there as `<name>.cpuprofile`, for
 * Chrome DevTools or speedscope (the summary keeps self time only; call trees need the file).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byArea: { area: string; ms: number }[];
  byFunction: { fn: string; ms: number }[];
}

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('wasm://')) return 'PGlite WebAssembly (Postgres itself)';
  if (url.startsWith('node:')) return 'Node.js internals';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1];
  if (pkg) return pkg;
  const src = url.match(/\/(src|bench)\/(.+)$/);
  if (src) return `${src[1]}/${src[2]}`;
  return url;
}

export async function cpuProfile<T>(
  name: string,
  work: () => Promise<T>,
): Promise<{ result: T; summary: ProfileSummary }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  let result: T;
  let profile: Profile;
  try {
    result = await work();
  } finally {
    profile = ((await session.post('Profiler.stop')) as unknown as { profile: Profile }).profile;
    session.disconnect();
  }
  const dir = process.env.BENCH_PROFILE_DIR;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name.replace(/[^A-Za-z0-9]+/g, '-')}.cpuprofile`), JSON.stringify(profile));
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    total += ms;
    const area = areaOf(frame.url, frame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    // Line numbers are those of tsx's compiled output, so only the function and its file are named.
    const fn = area === frame.functionName ? area : `${frame.functionName || '(anonymous)'} (${area})`;
    fns.set(fn, (fns.get(fn) ?? 0) + ms);
  });
  const top = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  return {
    result: result!,
    summary: {
      totalMs: total,
      byArea: top(areas).map(([area, ms]) => ({ area, ms })),
      byFunction: top(fns).map(([fn, ms]) => ({ fn, ms })),
    },
  };
}
