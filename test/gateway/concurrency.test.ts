/**
 * 50 streams at once through the gateway against a limit a few of them could spend alone: the
 * month's spend never passes the limit, every hold is settled, the ledger re-derives exactly.
 * Run on PGlite and on the Postgres server (TALLY_TEST_DATABASE_URL).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkLedger } from '../../src/services/ledger/checkLedger.ts';
import {
  anthropicClient,
  balance,
  type GatewayFixture,
  gatewayOrg,
  openaiClient,
  startGateway,
} from './fixture.ts';

let g: GatewayFixture;

beforeAll(async () => {
  g = await startGateway();
});
afterAll(async () => {
  await g.close();
});

it('50 concurrent streams never spend past a small limit', async () => {
  const limit = '0.1';
  const { org, key } = await gatewayOrg(g);
  const set = await g.tally.call('PUT', `/v1/orgs/${org.id}/limits`, {
    body: { alert_threshold: limit, allowed_limit: limit },
  });
  expect(set.status).toBe(200);
  // In full the 50 answers would cost about 0.19 EUR (200 output tokens each: gpt-4o about 0.0054, claude-haiku-4-5
  // about 0.002), and each costs more than its hold: the prompt is cached tokens the request
  // text does not show, so billing runs past the holds into whatever room is left.
  g.fake.behave({ chunks: 200, chunkDelayMs: 1 });
  const prompt = [{ role: 'user' as const, content: 'Write a poem' }];

  const outcomes = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const headers = { 'tally-member': `user_${i % 7}`, 'tally-feature': 'chat' };
      try {
        if (i % 2 === 0) {
          const stream = await openaiClient(g, key, headers).chat.completions.create({
            model: 'gpt-4o',
            messages: prompt,
            max_completion_tokens: 200,
            stream: true,
          });
          let finish: string | null = null;
          for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
          return finish === 'length' ? 'cut' : 'complete';
        }
        const message = await anthropicClient(g, key, headers)
          .messages.stream({ model: 'claude-haiku-4-5', max_tokens: 200, messages: prompt })
          .finalMessage();
        return message.stop_reason === 'max_tokens' ? 'cut' : 'complete';
      } catch (error) {
        return (error as { status?: number }).status === 402 ? 'denied' : `failed: ${String(error)}`;
      }
    }),
  );

  expect(outcomes.filter((o) => o.startsWith('failed'))).toEqual([]);
  expect(outcomes.filter((o) => o !== 'complete').length).toBeGreaterThan(0);
  const summary = await g.tally.call('GET', `/v1/orgs/${org.id}/usage/summary?range=mtd`);
  const spent = summary.body.cost as string;
  expect(Number(spent)).toBeLessThanOrEqual(Number(limit));
  expect(Number(spent)).toBeGreaterThan(Number(limit) / 2);
  expect((await balance(g, org.id)).held_credits).toBe('0');
  expect(await checkLedger(g.tally.db, org.id)).toEqual([]);
});
