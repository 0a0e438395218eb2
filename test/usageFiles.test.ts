/**
 * Uploaded files: extracted tokens, processing cost (the calls that processed a file, shared by
 * extracted tokens, exactly) and reuse (conversations and calls that used it), paginated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import { UsageFilesSchema } from '../src/http/routes/usageInsights.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';
import { everyPage } from './support/paging.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const micro = (s: string) => decimalUnits(s, 6);
const pico = (s: string) => decimalUnits(s, 12);

const call = (id: string, minutes: number, extra: Record<string, unknown>) => ({
  id,
  member: 'ana',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(minutes),
  usage: { input_tokens: 15_000 + minutes, output_tokens: 700 },
  ...extra,
});

async function send(key: string, events: unknown[]) {
  const r = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(r.status).toBe(200);
  for (const res of r.body.results) expect(res.status, JSON.stringify(res)).toBe('accepted');
  return r.body.results as { credits: string; cost: string }[];
}

async function files(orgId: string, key: string | undefined, query = '') {
  const path = `/v1/orgs/${orgId}/usage/files?range=7d&limit=1${query}`;
  const pages = await everyPage(t, path, key, (body) => UsageFilesSchema.parse(body), 20);
  return pages.flatMap((page) => page.data);
}

describe('usage files', () => {
  let org: { id: string };
  let key: string;
  let processed: { credits: string; cost: string };
  let separate: { credits: string; cost: string };

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t));
    const report = {
      id: 'f-report',
      name: 'Annual_Report.pdf',
      size_bytes: 2_300_000,
      extracted_tokens: 12_500,
    };
    const memo = { id: 'f-memo', name: 'memo.txt', size_bytes: 9_000, extracted_tokens: 2_500 };
    processed = (
      await send(key, [
        // Uploaded into chat 1: this call extracted both files.
        call('c1-m1', 100, {
          conversation_id: 'c1',
          message_id: 'm1',
          metadata: {
            files: [
              { ...report, processed: true },
              { ...memo, processed: true },
            ],
          },
        }),
      ])
    )[0]!;
    separate = (
      await send(key, [
        // A file processed on its own, then used in chat 2.
        call('x-1', 90, {
          feature: 'File processing',
          metadata: { files: [{ id: 'f-sheet', name: 'q3.xlsx', extracted_tokens: 4_000, processed: true }] },
        }),
      ])
    )[0]!;
    await send(key, [
      call('c1-m2', 80, {
        conversation_id: 'c1',
        message_id: 'm2',
        metadata: { files: [{ id: 'f-report' }] },
      }),
      call('c2-m1', 70, {
        conversation_id: 'c2',
        metadata: { files: [{ id: 'f-report' }, { id: 'f-sheet' }] },
      }),
      call('c3-m1', 60, { conversation_id: 'c3', member: 'bo', metadata: { files: [{ id: 'f-report' }] } }),
      // Not files: no id, a files value that is not a list.
      call('odd-1', 50, { metadata: { files: [{ name: 'no id' }, { id: 7 }] } }),
      call('odd-2', 40, { metadata: { files: 'f-report' } }),
    ]);
  });

  it('lists each file once, latest used first, with extracted tokens, processing cost and reuse', async () => {
    const list = await files(org.id, key);
    expect(list.map((f) => f.id)).toEqual(['f-report', 'f-sheet', 'f-memo']);
    const [report, sheet, memo] = list;
    expect(report).toMatchObject({
      name: 'Annual_Report.pdf',
      size_bytes: 2_300_000,
      extracted_tokens: 12_500,
      conversations: 3,
      calls: 4,
    });
    expect(report!.processing.calls).toBe(1);
    expect(memo).toMatchObject({ conversations: 1, calls: 1, extracted_tokens: 2_500 });
    // The call that extracted both is shared 12 500 : 2 500, to the last unit.
    const shared = micro(processed.credits);
    expect(micro(report!.processing.credits) + micro(memo!.processing.credits)).toBe(shared);
    expect(pico(report!.processing.cost) + pico(memo!.processing.cost)).toBe(pico(processed.cost));
    const diff = micro(report!.processing.credits) - 5n * micro(memo!.processing.credits);
    expect(diff >= -5n && diff <= 5n, String(diff)).toBe(true);
    // Processed on its own: the whole call; then reused in one conversation.
    expect(sheet).toMatchObject({ conversations: 1, calls: 2, extracted_tokens: 4_000, name: 'q3.xlsx' });
    expect(sheet!.processing).toMatchObject({ calls: 1, credits: separate.credits, cost: separate.cost });
    expect(report!.processing.provider_cost_usd).toBeNull();
    expect(report!.first_used_at < report!.last_used_at).toBe(true);
  });

  it('applies the usage filters and shows provider cost to the operator', async () => {
    const bo = await files(org.id, key, '&member=bo');
    expect(bo.map((f) => [f.id, f.conversations, f.processing.calls])).toEqual([['f-report', 1, 0]]);
    const asOperator = await files(org.id, undefined);
    expect(asOperator[0]!.processing.provider_cost_usd).toMatch(/^\d+(\.\d+)?$/);
  });

  it('hides other orgs and refuses bad input naming the field', async () => {
    const other = await createOrgWithKey(t);
    const r = await t.call('GET', `/v1/orgs/${org.id}/usage/files`, { key: other.key });
    expect(r.status).toBe(404);
    for (const [q, param] of [
      ['limit=0', 'limit'],
      ['cursor=abc', 'cursor'],
      ['range=2d', 'range'],
    ]) {
      const bad = await t.call('GET', `/v1/orgs/${org.id}/usage/files?${q}`, { key });
      expect([q, bad.status, bad.body.param]).toEqual([q, 400, param]);
    }
    expect(await files(other.org.id, other.key)).toEqual([]);
  });
});
