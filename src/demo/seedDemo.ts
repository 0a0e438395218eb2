import type { Tally } from '../server.ts';

/** Placeholder replaced by the demo generator below. */
export async function seedDemo(
  _tally: Tally,
): Promise<{ orgId: string; created: boolean; events: number } | null> {
  return null;
}
