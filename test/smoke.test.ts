import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

describe('smoke', () => {
  it('creates an org and ingests an event', async () => {
    const { org, key } = await createOrgWithKey(t);
    const res = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'e1',
            member: 'u1',
            feature: 'Chat',
            provider: 'openai',
            model: 'gpt-4o',
            occurred_at: minutesAgo(1),
            usage: { input_tokens: 1000, output_tokens: 500 },
          },
        ],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.results[0]).toMatchObject({
      status: 'accepted',
      credits: '1.035',
      cost: '0.01035',
      currency: 'EUR',
    });
    expect(org.id).toMatch(/^org_/);
  });
});
