/**
 * A Tally listening on a real port with its gateway pointed at the local fake providers, an org
 * with a key, and the official OpenAI and Anthropic clients aimed at the gateway.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { listen } from '../../src/server.ts';
import { type FakeProviders, startFakeProviders } from '../support/fakeProviders.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';

export const UPSTREAM_OPENAI_KEY = 'sk-operator-upstream-openai';
export const UPSTREAM_ANTHROPIC_KEY = 'sk-ant-operator-upstream';

export interface GatewayFixture {
  tally: TestTally;
  fake: FakeProviders;
  /** Tally's address, e.g. http://127.0.0.1:41234 */
  base: string;
  close(): Promise<void>;
}

export async function startGateway(env: Record<string, string> = {}): Promise<GatewayFixture> {
  const fake = await startFakeProviders();
  const tally = await startTally({
    PORT: '0',
    HOST: '127.0.0.1',
    TALLY_UPSTREAM_OPENAI_URL: fake.url,
    TALLY_UPSTREAM_ANTHROPIC_URL: fake.url,
    OPENAI_API_KEY: UPSTREAM_OPENAI_KEY,
    ANTHROPIC_API_KEY: UPSTREAM_ANTHROPIC_KEY,
    TALLY_SECRET_KEY: 'test-secret-key-0123456789abcdefghijklmnop',
    ...env,
  });
  const server = await listen(tally);
  return {
    tally,
    fake,
    base: server.url,
    close: async () => {
      await server.close();
      await fake.close();
      await tally.close();
    },
  };
}

export function openaiClient(g: GatewayFixture, apiKey: string, headers: Record<string, string> = {}) {
  return new OpenAI({
    apiKey,
    baseURL: `${g.base}/gateway/openai/v1`,
    defaultHeaders: headers,
    maxRetries: 0,
  });
}

export function anthropicClient(g: GatewayFixture, apiKey: string, headers: Record<string, string> = {}) {
  return new Anthropic({
    apiKey,
    baseURL: `${g.base}/gateway/anthropic`,
    defaultHeaders: headers,
    maxRetries: 0,
  });
}

/** An org with a key; the gateway attributes its calls to `member` (tally-member header). */
export async function gatewayOrg(g: GatewayFixture, overrides: Record<string, unknown> = {}) {
  return createOrgWithKey(g.tally, overrides);
}

/** The newest usage event of an org, as the usage API answers it. */
export async function lastEvent(g: GatewayFixture, orgId: string) {
  const page = await g.tally.call('GET', `/v1/orgs/${orgId}/usage/events?range=1d&limit=1`);
  if (page.status !== 200) throw new Error(JSON.stringify(page.body));
  return page.body.data[0];
}

/** What POST /v1/events charges for the same usage, in a fresh org of the same currency. */
export async function pricedThroughEvents(
  g: GatewayFixture,
  call: { provider: string; model: string; usage: Record<string, number> },
) {
  const { org } = await createOrgWithKey(g.tally);
  const answer = await g.tally.call('POST', '/v1/events', {
    body: {
      events: [
        {
          id: `reference-${Math.random()}`,
          org_id: org.id,
          member: 'reference',
          feature: 'reference',
          occurred_at: new Date().toISOString(),
          ...call,
        },
      ],
    },
  });
  const [result] = answer.body.results;
  if (result.status !== 'accepted') throw new Error(JSON.stringify(result));
  return { credits: result.credits as string, cost: result.cost as string };
}

export async function balance(g: GatewayFixture, orgId: string) {
  return (await g.tally.call('GET', `/v1/orgs/${orgId}/balance`)).body;
}
