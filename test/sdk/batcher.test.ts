/**
 * track()'s batches against a real Tally refusing one event by name (a 404 for an org it does not
 * know) or the whole body for its size (413), seen through a pass-through proxy.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FailedBatch, Tally, TallyError } from '../../sdk/src/index.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';
import { type FaultyProxy, type Listening, sdkEvent, serveTally, startFaultyProxy } from './support.ts';

// Small enough that a few events with a long note go over it.
const BODY_LIMIT_BYTES = 4096;

let t: TestTally;
let server: Listening;
let proxy: FaultyProxy;
beforeAll(async () => {
  t = await startTally({ TALLY_BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) });
  server = await serveTally(t);
  proxy = await startFaultyProxy(server.url);
});
afterAll(async () => {
  await proxy.close();
  await server.close();
  await t.close();
});

const event = sdkEvent;

async function setup() {
  const { org, key } = await createOrgWithKey(t);
  const failures: FailedBatch[] = [];
  const tally = new Tally({
    apiKey: key,
    baseUrl: proxy.url,
    flushIntervalMs: 60_000,
    onError: (failure) => failures.push(failure),
  });
  const postsBefore = proxy.seen.length;
  const postedIds = () =>
    proxy.seen
      .slice(postsBefore)
      .filter((r) => r.path === '/v1/events')
      .map((r) => r.body.events.map((e: { id: string }) => e.id));
  const storedIds = async () =>
    (await t.db.query<{ id: string }>('SELECT id FROM events WHERE org_id = $1 ORDER BY id', [org.id])).map(
      (e) => e.id,
    );
  return { tally, failures, postedIds, storedIds };
}

it('gives up on the one event a 404 names (an org Tally does not know) and delivers the rest', async () => {
  const s = await setup();
  for (let n = 0; n < 6; n++) s.tally.track(event(n, n === 3 ? { org_id: 'org_typo' } : {}));
  const report = await s.tally.flush();

  expect(s.failures.map((f) => f.events.map((e) => e.id))).toEqual([['e3']]);
  expect(s.failures[0]!.error).toBeInstanceOf(TallyError);
  expect(s.failures[0]!.error).toMatchObject({ status: 404, code: 'not_found', param: 'events[3].org_id' });
  expect(report.failed).toEqual(s.failures);
  expect(report.results.map((r) => [r.id, r.status])).toEqual(
    ['e0', 'e1', 'e2', 'e4', 'e5'].map((id) => [id, 'accepted']),
  );
  // The rest went again with the same ids.
  expect(s.postedIds()).toEqual([
    ['e0', 'e1', 'e2', 'e3', 'e4', 'e5'],
    ['e0', 'e1', 'e2', 'e4', 'e5'],
  ]);
  expect(await s.storedIds()).toEqual(['e0', 'e1', 'e2', 'e4', 'e5']);
});

it('sends a batch over the body limit (413) in halves, and gives up on an event too large alone', async () => {
  const s = await setup();
  // About 700 bytes an event as JSON: eight are over the limit, four are not; e4 alone is over it.
  const note = (chars: number) => ({ metadata: { note: 'x'.repeat(chars) } });
  for (let n = 0; n < 8; n++) s.tally.track(event(n, note(n === 4 ? BODY_LIMIT_BYTES : 500)));
  const report = await s.tally.flush();

  expect(s.postedIds()).toEqual([
    ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7'],
    ['e0', 'e1', 'e2', 'e3'],
    ['e4', 'e5', 'e6', 'e7'],
    ['e4', 'e5'],
    ['e4'],
    ['e5'],
    ['e6', 'e7'],
  ]);
  expect(s.failures.map((f) => f.events.map((e) => e.id))).toEqual([['e4']]);
  expect(s.failures[0]!.error).toMatchObject({ status: 413, code: 'payload_too_large' });
  expect(report.failed).toEqual(s.failures);
  const delivered = ['e0', 'e1', 'e2', 'e3', 'e5', 'e6', 'e7'];
  expect(report.results.map((r) => [r.id, r.status])).toEqual(delivered.map((id) => [id, 'accepted']));
  expect(await s.storedIds()).toEqual(delivered);
});
