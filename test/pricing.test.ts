/**
 * Pricing, end to end. The rounding rule under test is the one documented at the top of
 * src/domain/pricing.ts ("THE ROUNDING RULE"): the exact sell amount (provider cost x markup x FX,
 * or explicit sell prices) / credit value, rounded ONCE half-to-even to micro-credits; cost =
 * credits x credit value exactly; per-component parts allocated by largest remainder.
 *
 * Every expected amount below is written out by hand from the providers' list prices as the
 * `@pydantic/genai-prices` catalog (0.1.8, in node_modules) holds them; the comment beside each
 * case shows the arithmetic. The catalog prices relied on are copied into CATALOG and checked
 * against what GET /v1/models serves, so a catalog change fails loudly instead of silently.
 * Defaults: markup 1.5, EUR FX 0.92 (USD orgs: 1), credit value 0.01.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTimeOfDay, type MatchRule, matchesModel } from '../src/domain/modelMatch.ts';
import { formatUnits, Ratio } from '../src/domain/money.ts';
import {
  creditsToMoney,
  type PricingInput,
  type ProviderPriceSpec,
  priceEvent,
  tierPrice,
  type Usage,
} from '../src/domain/pricing.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

/** Provider list prices (USD per 1M tokens, per 1k requests/searches, per audio hour). */
const CATALOG = {
  'openai/gpt-4o': {
    input_mtok: '2.5',
    cache_read_mtok: '1.25',
    output_mtok: '10',
    web_searches_kcount: '10',
    storage_searches_kcount: '2.5',
  },
  'openai/gpt-4o-mini': {
    input_mtok: '0.15',
    cache_read_mtok: '0.075',
    output_mtok: '0.6',
    web_searches_kcount: '10',
    storage_searches_kcount: '2.5',
  },
  'openai/gpt-4.1': {
    input_mtok: '2',
    cache_read_mtok: '0.5',
    output_mtok: '8',
    web_searches_kcount: '10',
    storage_searches_kcount: '2.5',
  },
  'openai/gpt-4.1-nano': { input_mtok: '0.1', cache_read_mtok: '0.025', output_mtok: '0.4' },
  'openai/gpt-realtime-mini': {
    input_mtok: '0.6',
    cache_read_mtok: '0.06',
    output_mtok: '2.4',
    input_audio_mtok: '10',
    cache_audio_read_mtok: '0.3',
    output_audio_mtok: '20',
    input_image_mtok: '0.8',
    cache_image_read_mtok: '0.08',
  },
  'openai/text-embedding-3-small': { input_mtok: '0.02' },
  'openai/whisper-1': { audio_hours: '0.36', input_audio_hours: '0.36' },
  'anthropic/claude-sonnet-4-0': {
    input_mtok: '3',
    cache_write_mtok: '3.75',
    cache_read_mtok: '0.3',
    output_mtok: '15',
    cache_write_1h_mtok: '6',
    web_searches_kcount: '10',
  },
  'anthropic/claude-3-5-haiku-latest': {
    input_mtok: '0.8',
    cache_write_mtok: '1',
    cache_read_mtok: '0.08',
    output_mtok: '4',
    cache_write_1h_mtok: '1.6',
    web_searches_kcount: '10',
  },
  'anthropic/claude-opus-4-1': {
    input_mtok: '15',
    cache_write_mtok: '18.75',
    cache_read_mtok: '1.5',
    output_mtok: '75',
    cache_write_1h_mtok: '30',
    web_searches_kcount: '10',
  },
  'anthropic/claude-sonnet-4-5': {
    input_mtok: { base: '3', tiers: [{ start: 200000, price: '6' }] },
    cache_write_mtok: { base: '3.75', tiers: [{ start: 200000, price: '7.5' }] },
    cache_read_mtok: { base: '0.3', tiers: [{ start: 200000, price: '0.6' }] },
    output_mtok: { base: '15', tiers: [{ start: 200000, price: '22.5' }] },
    cache_write_1h_mtok: { base: '6', tiers: [{ start: 200000, price: '12' }] },
    web_searches_kcount: '10',
  },
  'anthropic/claude-fable-5': {
    input_mtok: '10',
    cache_write_mtok: '12.5',
    cache_read_mtok: '1',
    output_mtok: '50',
    cache_write_1h_mtok: '20',
    web_searches_kcount: '10',
  },
  'google/claude-4-sonnet': {
    input_mtok: '3',
    cache_write_mtok: '3.75',
    cache_read_mtok: '0.3',
    output_mtok: '15',
  },
  'google/gemini-2.5-pro': {
    input_mtok: { base: '1.25', tiers: [{ start: 200000, price: '2.5' }] },
    cache_read_mtok: { base: '0.125', tiers: [{ start: 200000, price: '0.25' }] },
    output_mtok: { base: '10', tiers: [{ start: 200000, price: '15' }] },
  },
  'google/gemini-2.5-flash': {
    input_mtok: '0.3',
    cache_read_mtok: '0.03',
    output_mtok: '2.5',
    input_audio_mtok: '1',
    cache_audio_read_mtok: '0.1',
  },
  'google/gemma-3': {},
  'mistral/mistral-large': { input_mtok: '2', output_mtok: '6' },
  'perplexity/sonar': { input_mtok: '1', output_mtok: '1', requests_kcount: '12' },
} satisfies Record<string, ProviderPriceSpec>;
type CatalogId = keyof typeof CATALOG;

interface Case {
  title: string;
  catalog: CatalogId;
  /** The model name an event sends (matched to the catalog entry by its rules). */
  model: string;
  usage: Usage;
  /** Provider cost in USD, exact. */
  providerCost: string;
  /** USD org (FX 1): credits and cost. */
  usd: [credits: string, cost: string];
  /** EUR org (FX 0.92): credits and cost. */
  eur: [credits: string, cost: string];
}

// Markup 1.5, credit value 0.01: credits = cost x 1.5 x FX / 0.01 = cost x 150 (USD) or x 138 (EUR).
const CASES: Case[] = [
  {
    title: 'gpt-4o, plain',
    catalog: 'openai/gpt-4o',
    model: 'gpt-4o',
    usage: { input_tokens: 1000, output_tokens: 500 },
    // 1000 x 2.5/1M = 0.0025; 500 x 10/1M = 0.005; total 0.0075
    providerCost: '0.0075',
    usd: ['1.125', '0.01125'], // 0.0075 x 1.5 = 0.01125 USD / 0.01 = 1.125 credits
    eur: ['1.035', '0.01035'], // 0.01125 x 0.92 = 0.01035 EUR / 0.01 = 1.035 credits
  },
  {
    title: 'gpt-4o, OpenAI cached input',
    catalog: 'openai/gpt-4o',
    model: 'gpt-4o-2024-08-06',
    usage: { input_tokens: 10000, cache_read_tokens: 4000, output_tokens: 1000 },
    // uncached 6000 x 2.5/1M = 0.015; cached 4000 x 1.25/1M = 0.005; output 1000 x 10/1M = 0.01
    providerCost: '0.03',
    usd: ['4.5', '0.045'], // 0.03 x 1.5 = 0.045
    eur: ['4.14', '0.0414'], // 0.045 x 0.92 = 0.0414
  },
  {
    title: 'gpt-4o-mini, a half-to-even tie at event level',
    catalog: 'openai/gpt-4o-mini',
    model: 'gpt-4o-mini',
    usage: { input_tokens: 1234567, output_tokens: 7654 },
    // 1234567 x 0.15/1M = 0.18518505; 7654 x 0.6/1M = 0.0045924; total 0.18977745
    providerCost: '0.18977745',
    // x 1.5 = 0.284666175 USD / 0.01 = 28.4666175: a tie at 6 decimals, 7 is odd -> 28.466618
    usd: ['28.466618', '0.28466618'],
    // x 0.92 = 0.261892881 EUR / 0.01 = 26.1892881 -> 26.189288
    eur: ['26.189288', '0.26189288'],
  },
  {
    title: 'gpt-4o-mini, 1 token: a tie that rounds down to even',
    catalog: 'openai/gpt-4o-mini',
    model: 'gpt-4o-mini',
    usage: { input_tokens: 1 },
    // 1 x 0.15/1M = 0.00000015
    providerCost: '0.00000015',
    usd: ['0.000022', '0.00000022'], // x 1.5 = 0.000000225 / 0.01 = 0.0000225: 22.5 micro -> 22 (even)
    eur: ['0.000021', '0.00000021'], // x 0.92 = 0.000000207 / 0.01 = 0.0000207 -> 21 micro
  },
  {
    title: 'gpt-4o-mini, 3 tokens: a tie that rounds up to even',
    catalog: 'openai/gpt-4o-mini',
    model: 'gpt-4o-mini',
    usage: { input_tokens: 3 },
    // 3 x 0.15/1M = 0.00000045
    providerCost: '0.00000045',
    usd: ['0.000068', '0.00000068'], // x 1.5 = 0.000000675 / 0.01: 67.5 micro -> 68 (even)
    eur: ['0.000062', '0.00000062'], // x 0.92 = 0.000000621 / 0.01: 62.1 micro -> 62
  },
  {
    title: 'gpt-4.1, OpenAI cached input',
    catalog: 'openai/gpt-4.1',
    model: 'gpt-4.1',
    usage: { input_tokens: 50000, cache_read_tokens: 20000, output_tokens: 2000 },
    // uncached 30000 x 2/1M = 0.06; cached 20000 x 0.5/1M = 0.01; output 2000 x 8/1M = 0.016
    providerCost: '0.086',
    usd: ['12.9', '0.129'], // 0.086 x 1.5 = 0.129
    eur: ['11.868', '0.11868'], // 0.129 x 0.92 = 0.11868
  },
  {
    title: 'claude-sonnet-4 (dated name), Anthropic cache read + write',
    catalog: 'anthropic/claude-sonnet-4-0',
    model: 'claude-sonnet-4-20250514',
    usage: { input_tokens: 10000, cache_read_tokens: 3000, cache_write_tokens: 2000, output_tokens: 800 },
    // uncached 5000 x 3/1M = 0.015; read 3000 x 0.3/1M = 0.0009; write 2000 x 3.75/1M = 0.0075;
    // output 800 x 15/1M = 0.012; total 0.0354
    providerCost: '0.0354',
    usd: ['5.31', '0.0531'], // 0.0354 x 1.5 = 0.0531
    eur: ['4.8852', '0.048852'], // 0.0531 x 0.92 = 0.048852
  },
  {
    title: 'claude-3-5-haiku, Anthropic cache read + write',
    catalog: 'anthropic/claude-3-5-haiku-latest',
    model: 'claude-3-5-haiku-20241022',
    usage: { input_tokens: 100000, cache_read_tokens: 60000, cache_write_tokens: 30000, output_tokens: 5000 },
    // uncached 10000 x 0.8/1M = 0.008; read 60000 x 0.08/1M = 0.0048; write 30000 x 1/1M = 0.03;
    // output 5000 x 4/1M = 0.02; total 0.0628
    providerCost: '0.0628',
    usd: ['9.42', '0.0942'], // 0.0628 x 1.5 = 0.0942
    eur: ['8.6664', '0.086664'], // 0.0942 x 0.92 = 0.086664
  },
  {
    title: 'claude-sonnet-4, 5-minute and 1-hour cache writes',
    catalog: 'anthropic/claude-sonnet-4-0',
    model: 'claude-sonnet-4-20250514',
    usage: {
      input_tokens: 10000,
      cache_read_tokens: 3000,
      cache_write_tokens: 2000,
      cache_write_1h_tokens: 1500,
      output_tokens: 800,
    },
    // Anthropic: 5-minute writes 1.25 x input (3.75), 1-hour writes 2 x input (6), reads 0.1 x (0.3).
    // uncached 5000 x 3/1M = 0.015; read 3000 x 0.3/1M = 0.0009; 5m write 500 x 3.75/1M = 0.001875;
    // 1h write 1500 x 6/1M = 0.009; output 800 x 15/1M = 0.012; total 0.038775
    providerCost: '0.038775',
    usd: ['5.81625', '0.0581625'], // 0.038775 x 1.5 = 0.0581625
    eur: ['5.35095', '0.0535095'], // 0.0581625 x 0.92 = 0.0535095
  },
  {
    title: 'claude-3-5-haiku, every cache write 1-hour',
    catalog: 'anthropic/claude-3-5-haiku-latest',
    model: 'claude-3-5-haiku-20241022',
    usage: {
      input_tokens: 100000,
      cache_read_tokens: 60000,
      cache_write_tokens: 30000,
      cache_write_1h_tokens: 30000,
      output_tokens: 5000,
    },
    // uncached 10000 x 0.8/1M = 0.008; read 60000 x 0.08/1M = 0.0048; 1h write 30000 x 1.6/1M = 0.048;
    // output 5000 x 4/1M = 0.02; total 0.0808
    providerCost: '0.0808',
    usd: ['12.12', '0.1212'], // 0.0808 x 1.5 = 0.1212
    eur: ['11.1504', '0.111504'], // 0.1212 x 0.92 = 0.111504
  },
  {
    title: 'claude-opus-4-1',
    catalog: 'anthropic/claude-opus-4-1',
    model: 'claude-opus-4-1',
    usage: { input_tokens: 2000, output_tokens: 1000 },
    // 2000 x 15/1M = 0.03; 1000 x 75/1M = 0.075
    providerCost: '0.105',
    usd: ['15.75', '0.1575'], // 0.105 x 1.5 = 0.1575
    eur: ['14.49', '0.1449'], // 0.1575 x 0.92 = 0.1449
  },
  {
    title: 'claude-sonnet-4-5 above 200k: every kind at the long-context tier',
    catalog: 'anthropic/claude-sonnet-4-5',
    model: 'claude-sonnet-4-5',
    usage: {
      input_tokens: 300000,
      cache_read_tokens: 100000,
      cache_write_tokens: 50000,
      output_tokens: 1000,
    },
    // 300000 > 200000: uncached 150000 x 6/1M = 0.9; read 100000 x 0.6/1M = 0.06;
    // write 50000 x 7.5/1M = 0.375; output 1000 x 22.5/1M = 0.0225; total 1.3575
    providerCost: '1.3575',
    usd: ['203.625', '2.03625'], // 1.3575 x 1.5 = 2.03625
    eur: ['187.335', '1.87335'], // 2.03625 x 0.92 = 1.87335
  },
  {
    title: 'claude-sonnet-4-5 above 200k: 1-hour cache writes at their long-context tier',
    catalog: 'anthropic/claude-sonnet-4-5',
    model: 'claude-sonnet-4-5',
    usage: {
      input_tokens: 300000,
      cache_read_tokens: 100000,
      cache_write_tokens: 50000,
      cache_write_1h_tokens: 20000,
      output_tokens: 1000,
    },
    // 300000 > 200000: uncached 150000 x 6/1M = 0.9; read 100000 x 0.6/1M = 0.06;
    // 5m write 30000 x 7.5/1M = 0.225; 1h write 20000 x 12/1M = 0.24; output 1000 x 22.5/1M = 0.0225;
    // total 1.4475
    providerCost: '1.4475',
    usd: ['217.125', '2.17125'], // 1.4475 x 1.5 = 2.17125
    eur: ['199.755', '1.99755'], // 2.17125 x 0.92 = 1.99755
  },
  {
    title: 'claude-fable-5 under a dated, mixed-case name (a regex rule)',
    catalog: 'anthropic/claude-fable-5',
    model: 'Claude-Fable-5-20260301',
    usage: { input_tokens: 1000, output_tokens: 100 },
    // 1000 x 10/1M = 0.01; 100 x 50/1M = 0.005
    providerCost: '0.015',
    usd: ['2.25', '0.0225'],
    eur: ['2.07', '0.0207'],
  },
  {
    title: 'gemini-2.5-pro at exactly 200k input: still the base tier',
    catalog: 'google/gemini-2.5-pro',
    model: 'gemini-2.5-pro',
    usage: { input_tokens: 200000, output_tokens: 1000 },
    // 200000 does not exceed 200000: 200000 x 1.25/1M = 0.25; 1000 x 10/1M = 0.01
    providerCost: '0.26',
    usd: ['39', '0.39'], // 0.26 x 1.5 = 0.39
    eur: ['35.88', '0.3588'], // 0.39 x 0.92 = 0.3588
  },
  {
    title: 'gemini-2.5-pro at 200001 input: all tokens at the upper tier',
    catalog: 'google/gemini-2.5-pro',
    model: 'gemini-2.5-pro',
    usage: { input_tokens: 200001, output_tokens: 1000 },
    // 200001 x 2.5/1M = 0.5000025; output 1000 x 15/1M = 0.015; total 0.5150025
    providerCost: '0.5150025',
    usd: ['77.250375', '0.77250375'], // 0.5150025 x 1.5 = 0.77250375
    eur: ['71.070345', '0.71070345'], // 0.77250375 x 0.92 = 0.71070345
  },
  {
    title: 'gemini-2.5-pro above 200k with cached input',
    catalog: 'google/gemini-2.5-pro',
    model: 'gemini-2.5-pro',
    usage: { input_tokens: 250000, cache_read_tokens: 100000, output_tokens: 2000 },
    // uncached 150000 x 2.5/1M = 0.375; cached 100000 x 0.25/1M = 0.025; output 2000 x 15/1M = 0.03
    providerCost: '0.43',
    usd: ['64.5', '0.645'], // 0.43 x 1.5 = 0.645
    eur: ['59.34', '0.5934'], // 0.645 x 0.92 = 0.5934
  },
  {
    title: 'gemini-2.5-flash with audio input',
    catalog: 'google/gemini-2.5-flash',
    model: 'gemini-2.5-flash',
    usage: { input_tokens: 10000, input_audio_tokens: 2000, output_tokens: 3000 },
    // text 8000 x 0.3/1M = 0.0024; audio 2000 x 1/1M = 0.002; output 3000 x 2.5/1M = 0.0075
    providerCost: '0.0119',
    usd: ['1.785', '0.01785'], // 0.0119 x 1.5 = 0.01785
    eur: ['1.6422', '0.016422'], // 0.01785 x 0.92 = 0.016422
  },
  {
    // An OpenAI Realtime response.done usage: input_tokens 7391 (text 1207, audio 6184), of which
    // cached_tokens 5376 (cached_tokens_details: text 1024, audio 4352); output_tokens 1153 (text
    // 241, audio 912). Each input token once: uncached text 7391 - 5376 - 6184 + 4352 = 183, cached
    // text 5376 - 4352 = 1024, cached audio 4352, uncached audio 6184 - 4352 = 1832.
    title: 'gpt-realtime-mini with cached audio input',
    catalog: 'openai/gpt-realtime-mini',
    model: 'gpt-realtime-mini',
    usage: {
      input_tokens: 7391,
      cache_read_tokens: 5376,
      cache_audio_read_tokens: 4352,
      input_audio_tokens: 6184,
      output_tokens: 1153,
      output_audio_tokens: 912,
    },
    // text 183 x 0.6/1M = 0.0001098; cached text 1024 x 0.06/1M = 0.00006144; cached audio 4352 x
    // 0.3/1M = 0.0013056; audio 1832 x 10/1M = 0.01832; output text 241 x 2.4/1M = 0.0005784;
    // output audio 912 x 20/1M = 0.01824; total 0.03861524
    providerCost: '0.03861524',
    usd: ['5.792286', '0.05792286'], // 0.03861524 x 150 = 5.792286
    eur: ['5.328903', '0.05328903'], // 0.03861524 x 138 = 5.32890312 -> 5.328903 (half to even)
  },
  {
    // The same usage from a client that does not send cache_audio_read_tokens: cache reads 5376 and
    // audio 6184 overlap by at least 5376 + 6184 - 7391 = 4169 tokens, taken as the cached audio:
    // cached text 1207, cached audio 4169, uncached audio 2015, uncached text 0.
    title: 'gpt-realtime-mini with cached audio not broken out',
    catalog: 'openai/gpt-realtime-mini',
    model: 'gpt-realtime-mini',
    usage: {
      input_tokens: 7391,
      cache_read_tokens: 5376,
      input_audio_tokens: 6184,
      output_tokens: 1153,
      output_audio_tokens: 912,
    },
    // 1207 x 0.06/1M = 0.00007242; 4169 x 0.3/1M = 0.0012507; 2015 x 10/1M = 0.02015; output as
    // above 0.0005784 + 0.01824; total 0.04029152
    providerCost: '0.04029152',
    usd: ['6.043728', '0.06043728'], // 0.04029152 x 150 = 6.043728
    eur: ['5.56023', '0.0556023'], // 0.04029152 x 138 = 5.56022976 -> 5.560230
  },
  {
    title: 'mistral-large-latest',
    catalog: 'mistral/mistral-large',
    model: 'mistral-large-latest',
    usage: { input_tokens: 3000, output_tokens: 1500 },
    // 3000 x 2/1M = 0.006; 1500 x 6/1M = 0.009
    providerCost: '0.015',
    usd: ['2.25', '0.0225'],
    eur: ['2.07', '0.0207'],
  },
  {
    title: 'perplexity sonar: one request per event',
    catalog: 'perplexity/sonar',
    model: 'sonar',
    usage: { input_tokens: 1000, output_tokens: 1000 },
    // 1000 x 1/1M = 0.001; 1000 x 1/1M = 0.001; 1 request x 12/1000 = 0.012; total 0.014
    providerCost: '0.014',
    usd: ['2.1', '0.021'], // 0.014 x 1.5 = 0.021
    eur: ['1.932', '0.01932'], // 0.021 x 0.92 = 0.01932
  },
  {
    title: 'whisper-1 by audio seconds',
    catalog: 'openai/whisper-1',
    model: 'whisper-1',
    usage: { seconds: 90 },
    // 90 s x 0.36/3600 = 0.009
    providerCost: '0.009',
    usd: ['1.35', '0.0135'],
    eur: ['1.242', '0.01242'],
  },
  {
    title: 'text-embedding-3-small: output tokens have no price, so cost nothing',
    catalog: 'openai/text-embedding-3-small',
    model: 'text-embedding-3-small',
    usage: { input_tokens: 1000000, output_tokens: 10 },
    // 1000000 x 0.02/1M = 0.02
    providerCost: '0.02',
    usd: ['3', '0.03'],
    eur: ['2.76', '0.0276'],
  },
  {
    title: 'gemma-3 is free in the catalog',
    catalog: 'google/gemma-3',
    model: 'gemma-3-27b-it',
    usage: { input_tokens: 5000, output_tokens: 5000 },
    providerCost: '0',
    usd: ['0', '0'],
    eur: ['0', '0'],
  },
];

const caseOf = (title: string): Case => {
  const found = CASES.find((c) => c.title.includes(title));
  if (!found) throw new Error(`no case ${title}`);
  return found;
};

const USD = Ratio.parse('1');
const EUR_FX = Ratio.parse('0.92');
const base = (spec: ProviderPriceSpec | null, usage: Usage, fx = USD): PricingInput => ({
  usage,
  providerPrices: spec,
  sellOverrides: {},
  markup: Ratio.parse('1.5'),
  fxRate: fx,
  creditValue: Ratio.parse('0.01'),
});

/** Decimal text to integer units, by string surgery only (independent of money.ts). */
function units(text: string, scale: number): bigint {
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const trimmed = fraction.replace(/0+$/, '');
  if (trimmed.length > scale) throw new Error(`too many decimals: ${text}`);
  const value = BigInt(whole! + trimmed.padEnd(scale, '0'));
  return negative ? -value : value;
}

describe('priceEvent (domain)', () => {
  it.each(CASES)('$title', (c) => {
    const usd = priceEvent(base(CATALOG[c.catalog], c.usage));
    if (!usd.ok) throw new Error(usd.detail);
    expect(formatUnits(usd.credits, 6)).toBe(c.usd[0]);
    expect(creditsToMoney(usd.credits, Ratio.parse('0.01'))).toBe(c.usd[1]);
    expect(formatUnits(usd.providerCostUsd, 10)).toBe(c.providerCost);

    const eur = priceEvent(base(CATALOG[c.catalog], c.usage, EUR_FX));
    if (!eur.ok) throw new Error(eur.detail);
    expect(formatUnits(eur.credits, 6)).toBe(c.eur[0]);
    expect(creditsToMoney(eur.credits, Ratio.parse('0.01'))).toBe(c.eur[1]);
    expect(formatUnits(eur.providerCostUsd, 10)).toBe(c.providerCost); // FX never touches USD cost

    // The rule's step 4: the parts add up to the total to the last unit.
    expect(usd.components.reduce((a, p) => a + p.credits, 0n)).toBe(usd.credits);
    expect(usd.components.reduce((a, p) => a + units(p.providerCostUsd, 10), 0n)).toBe(usd.providerCostUsd);
  });

  it('splits an Anthropic cached event into components that add up', () => {
    const r = priceEvent(
      base(CATALOG['anthropic/claude-3-5-haiku-latest'], caseOf('claude-3-5-haiku').usage),
    );
    if (!r.ok) throw new Error(r.detail);
    const byKind = Object.fromEntries(
      r.components.map((p) => [p.component, [p.quantity, formatUnits(p.credits, 6), p.providerCostUsd]]),
    );
    expect(byKind).toEqual({
      input: [10000n, '1.2', '0.008'], // 0.008 x 150
      cache_read: [60000n, '0.72', '0.0048'], // 0.0048 x 150
      cache_write: [30000n, '4.5', '0.03'], // 0.03 x 150
      output: [5000n, '3', '0.02'], // 0.02 x 150
    });
  });

  it('splits 5-minute and 1-hour cache writes into components that add up', () => {
    const r = priceEvent(
      base(CATALOG['anthropic/claude-sonnet-4-0'], caseOf('claude-sonnet-4, 5-minute').usage),
    );
    if (!r.ok) throw new Error(r.detail);
    const byKind = Object.fromEntries(
      r.components.map((p) => [p.component, [p.quantity, formatUnits(p.credits, 6), p.providerCostUsd]]),
    );
    expect(byKind).toEqual({
      input: [5000n, '2.25', '0.015'], // 0.015 x 150
      cache_read: [3000n, '0.135', '0.0009'], // 0.0009 x 150
      cache_write: [500n, '0.28125', '0.001875'], // 0.001875 x 150
      cache_write_1h: [1500n, '1.35', '0.009'], // 0.009 x 150
      output: [800n, '1.8', '0.012'], // 0.012 x 150
    });
  });

  it('prices each input token of a Realtime event once: cached audio apart from cache reads and audio', () => {
    const { usage } = caseOf('gpt-realtime-mini with cached audio input');
    const parts = (fx: Ratio) => {
      const r = priceEvent(base(CATALOG['openai/gpt-realtime-mini'], usage, fx));
      if (!r.ok) throw new Error(r.detail);
      expect(r.components.reduce((a, p) => a + p.quantity, 0n)).toBe(
        BigInt(usage.input_tokens! + usage.output_tokens!),
      );
      expect(r.components.reduce((a, p) => a + p.credits, 0n)).toBe(r.credits);
      expect(r.components.reduce((a, p) => a + units(p.providerCostUsd, 10), 0n)).toBe(r.providerCostUsd);
      return Object.fromEntries(
        r.components.map((p) => [p.component, [p.quantity, formatUnits(p.credits, 6), p.providerCostUsd]]),
      );
    };
    expect(parts(USD)).toEqual({
      cache_read: [1024n, '0.009216', '0.00006144'], // 0.00006144 x 150
      cache_audio_read: [4352n, '0.19584', '0.0013056'], // 0.0013056 x 150
      input_audio: [1832n, '2.748', '0.01832'], // 0.01832 x 150
      input: [183n, '0.01647', '0.0001098'], // 0.0001098 x 150
      output_audio: [912n, '2.736', '0.01824'], // 0.01824 x 150
      output: [241n, '0.08676', '0.0005784'], // 0.0005784 x 150; the six add up to 5.792286
    });
    // EUR, x 138: exact parts 0.00847872, 0.1801728, 2.52816, 0.0151524, 2.51712, 0.0798192 (sum
    // 5.32890312); the rounded 5.328903 is shared by largest remainder: floors 0.008478, 0.180172,
    // 2.528159, 0.015152, 2.517119, 0.079819 (each exact part x 5.328903 / 5.32890312) leave 4
    // micro-credits, to the remainders .94 (audio in), .94 (audio out), .80 (cached audio), .72
    // (cached text).
    expect(parts(EUR_FX)).toEqual({
      cache_read: [1024n, '0.008479', '0.00006144'],
      cache_audio_read: [4352n, '0.180173', '0.0013056'],
      input_audio: [1832n, '2.52816', '0.01832'],
      input: [183n, '0.015152', '0.0001098'],
      output_audio: [912n, '2.51712', '0.01824'],
      output: [241n, '0.079819', '0.0005784'],
    });
  });

  it('bills cached audio as cache reads without a cached-audio price, as audio input without either', () => {
    const { usage } = caseOf('gpt-realtime-mini with cached audio input');
    const { cache_audio_read_mtok: _, ...withoutCachedAudio } = CATALOG['openai/gpt-realtime-mini'];
    const kinds = (r: ReturnType<typeof priceEvent>) =>
      r.ok ? [formatUnits(r.credits, 6), r.components.map((p) => [p.component, p.quantity])] : r.detail;
    // All 5376 cache reads at 0.06/1M = 0.00032256; text 183 x 0.6/1M = 0.0001098; audio 1832 x
    // 10/1M = 0.01832; output 0.0005784 + 0.01824; total 0.03757076 x 150 = 5.635614
    expect(kinds(priceEvent(base(withoutCachedAudio, usage)))).toEqual([
      '5.635614',
      [
        ['cache_read', 5376n],
        ['input_audio', 1832n],
        ['input', 183n],
        ['output_audio', 912n],
        ['output', 241n],
      ],
    ]);
    // Without any cache price: the cached audio is audio, the cached text is text. Audio 6184 x
    // 10/1M = 0.06184; text 1207 x 0.6/1M = 0.0007242; output 0.01824 + 0.0005784; total 0.0813826
    // x 150 = 12.20739
    const { cache_read_mtok: __, ...withoutCache } = withoutCachedAudio;
    expect(kinds(priceEvent(base(withoutCache, usage)))).toEqual([
      '12.20739',
      [
        ['input_audio', 6184n],
        ['input', 1207n],
        ['output_audio', 912n],
        ['output', 241n],
      ],
    ]);
    // An org's own cache-read price covers the cached audio too: all 5376 reads at 0.0001 per 1k =
    // 0.0005376 / 0.01 = 0.05376 credits.
    const own = priceEvent({
      ...base(CATALOG['openai/gpt-realtime-mini'], usage),
      sellOverrides: { cache_read: { price: '0.0001', unit: 'per_1k_tokens' } },
    });
    if (!own.ok) throw new Error(own.detail);
    expect(
      own.components
        .filter((p) => p.component.startsWith('cache'))
        .map((p) => [p.component, p.quantity, formatUnits(p.credits, 6)]),
    ).toEqual([['cache_read', 5376n, '0.05376']]);
  });

  it('bills 1-hour cache writes as cache writes without a 1-hour price, as input without either', () => {
    const { usage } = caseOf('claude-sonnet-4, 5-minute');
    const { cache_write_1h_mtok: _, ...sonnetWithout1h } = CATALOG['anthropic/claude-sonnet-4-0'];
    const kinds = (r: ReturnType<typeof priceEvent>) =>
      r.ok ? [formatUnits(r.credits, 6), r.components.map((p) => [p.component, p.quantity])] : r.detail;
    // claude-sonnet-4 without its 1-hour price (5.81625 credits with it, the case above): all 2000
    // writes at 3.75/1M: 0.015 + 0.0009 + 0.0075 + 0.012 = 0.0354 x 150 = 5.31
    expect(kinds(priceEvent(base(sonnetWithout1h, usage)))).toEqual([
      '5.31',
      [
        ['cache_read', 3000n],
        ['cache_write', 2000n],
        ['input', 5000n],
        ['output', 800n],
      ],
    ]);
    // mistral-large has no cache prices: all 10000 input tokens at 2/1M = 0.02; output 800 x 6/1M =
    // 0.0048; 0.0248 x 150 = 3.72
    expect(kinds(priceEvent(base(CATALOG['mistral/mistral-large'], usage)))).toEqual([
      '3.72',
      [
        ['input', 10000n],
        ['output', 800n],
      ],
    ]);
    // Sell prices for input, 1-hour writes and output only (an unknown model): reads and 5-minute
    // writes are billed as input. input 0.001 per 1k: (5000 + 3000 + 500) x 0.000001 = 0.0085;
    // 1h 1500 x 0.004/1k = 0.006;
    // output 800 x 0.002/1k = 0.0016; 0.0161 / 0.01 = 1.61 credits
    const sold = priceEvent({
      ...base(null, usage),
      sellOverrides: {
        input: { price: '0.001', unit: 'per_1k_tokens' },
        cache_write_1h: { price: '0.004', unit: 'per_1k_tokens' },
        output: { price: '0.002', unit: 'per_1k_tokens' },
      },
    });
    expect(kinds(sold)).toEqual([
      '1.61',
      [
        ['cache_write_1h', 1500n],
        ['input', 8500n],
        ['output', 800n],
      ],
    ]);
  });

  it("prices 1-hour cache writes at an org's own cache-write price when it set none for them", () => {
    const { usage } = caseOf('claude-sonnet-4, 5-minute');
    const r = priceEvent({
      ...base(CATALOG['anthropic/claude-sonnet-4-0'], usage),
      sellOverrides: { cache_write: { price: '0.1', unit: 'per_1k_tokens' } },
    });
    if (!r.ok) throw new Error(r.detail);
    // All 2000 writes at the org's 0.1 per 1k = 0.2 / 0.01 = 20 credits, none at the catalog's 1-hour rate.
    const writes = r.components.filter((p) => p.component.startsWith('cache_write'));
    expect(writes.map((p) => [p.component, p.quantity, formatUnits(p.credits, 6)])).toEqual([
      ['cache_write', 2000n, '20'],
    ]);
  });

  it('allocates the rounded total by largest remainder', () => {
    // gpt-4o-mini, 1234567 in / 7654 out: exact sell in micro-credits is 27777757.5 (input) and
    // 688860 (output), 28466617.5 together, rounded to 28466618. Floors 27777757 + 688860 leave
    // one micro-credit, which goes to the input (remainder 0.5).
    const r = priceEvent(base(CATALOG['openai/gpt-4o-mini'], caseOf('half-to-even tie at event').usage));
    if (!r.ok) throw new Error(r.detail);
    expect(r.components.map((p) => [p.component, p.credits, p.providerCostUsd])).toEqual([
      ['input', 27_777_758n, '0.18518505'],
      ['output', 688_860n, '0.0045924'],
    ]);
  });

  it('applies markup, FX and credit value as given', () => {
    // gpt-4o 1000/500: cost 0.0075 USD x markup 2 = 0.015 x FX 0.92 = 0.0138 EUR / 0.05 = 0.276 credits
    const r = priceEvent({
      ...base(CATALOG['openai/gpt-4o'], caseOf('gpt-4o, plain').usage, EUR_FX),
      markup: Ratio.parse('2'),
      creditValue: Ratio.parse('0.05'),
    });
    expect(r.ok && formatUnits(r.credits, 6)).toBe('0.276');
    expect(r.ok && creditsToMoney(r.credits, Ratio.parse('0.05'))).toBe('0.0138');
  });

  it('derives the cost from the rounded credits, not from the sell amount', () => {
    // 0.01125 USD / 0.07 = 0.16071428571... -> 0.160714 credits; cost 0.160714 x 0.07 = 0.01124998
    const r = priceEvent({
      ...base(CATALOG['openai/gpt-4o'], caseOf('gpt-4o, plain').usage),
      creditValue: Ratio.parse('0.07'),
    });
    expect(r.ok && formatUnits(r.credits, 6)).toBe('0.160714');
    expect(r.ok && creditsToMoney(r.credits, Ratio.parse('0.07'))).toBe('0.01124998');
  });

  it('charges the requests an event names, or one, or none for a partial call', () => {
    const sonar = CATALOG['perplexity/sonar'];
    const usage = { input_tokens: 1000, output_tokens: 1000 };
    // 0.002 tokens + 3 x 0.012 = 0.038 x 1.5 = 0.057 -> 5.7 credits
    const three = priceEvent(base(sonar, { ...usage, requests: 3 }));
    expect(three.ok && formatUnits(three.credits, 6)).toBe('5.7');
    // a streamed increment: 0.002 x 1.5 = 0.003 -> 0.3 credits
    const partial = priceEvent({ ...base(sonar, usage), defaultRequests: 0n });
    expect(partial.ok && formatUnits(partial.credits, 6)).toBe('0.3');
    // a model without a per-request price charges no request
    const none = priceEvent(base(CATALOG['mistral/mistral-large'], { input_tokens: 1000 }));
    expect(none.ok && none.components.map((p) => p.component)).toEqual(['input']);
  });

  it('bills cache tokens at the input rate when the model has no cache price', () => {
    // mistral-large has no cache_read price: all 10000 input tokens at 2/1M = 0.02 -> x 150 = 3 credits
    const r = priceEvent(
      base(CATALOG['mistral/mistral-large'], { input_tokens: 10000, cache_read_tokens: 4000 }),
    );
    if (!r.ok) throw new Error(r.detail);
    expect(formatUnits(r.credits, 6)).toBe('3');
    expect(r.components.map((p) => [p.component, p.quantity])).toEqual([['input', 10000n]]);
  });

  it('uses explicit sell prices over cost x markup x FX', () => {
    // unknown model: input 0.002 per 1k tokens, output 4 per 1M tokens (org currency)
    // 1500 x 0.002/1000 = 0.003; 2500 x 4/1M = 0.01; 0.013 / 0.01 = 1.3 credits
    const r = priceEvent({
      ...base(null, { input_tokens: 1500, output_tokens: 2500 }, EUR_FX),
      sellOverrides: {
        input: { price: '0.002', unit: 'per_1k_tokens' },
        output: { price: '4', unit: 'per_1m_tokens' },
      },
    });
    if (!r.ok) throw new Error(r.detail);
    expect(formatUnits(r.credits, 6)).toBe('1.3');
    expect(r.providerCostUsd).toBe(0n);
    expect(r.components.map((p) => [p.component, formatUnits(p.credits, 6)])).toEqual([
      ['input', '0.3'],
      ['output', '1'],
    ]);
    // A catalog model with one override: output at 0.02 per 1k = 500 x 0.00002 = 0.01 EUR;
    // input from the catalog: gpt-4o 1000 x 2.5/1M x 1.5 x 0.92 = 0.00345 EUR; 0.01345 -> 1.345 credits
    const mixed = priceEvent({
      ...base(CATALOG['openai/gpt-4o'], caseOf('gpt-4o, plain').usage, EUR_FX),
      sellOverrides: { output: { price: '0.02', unit: 'per_1k_tokens' } },
    });
    expect(mixed.ok && formatUnits(mixed.credits, 6)).toBe('1.345');
    expect(mixed.ok && formatUnits(mixed.providerCostUsd, 10)).toBe('0.0075');
  });

  it('refuses what it cannot price', () => {
    expect(priceEvent(base(null, { input_tokens: 10 }))).toMatchObject({ ok: false, code: 'model_unpriced' });
    const partial = priceEvent({
      ...base(null, { input_tokens: 10, output_tokens: 5 }),
      sellOverrides: { input: { price: '1', unit: 'per_1k_tokens' } },
    });
    expect(partial).toMatchObject({ ok: false, code: 'component_unpriced', component: 'output' });
    // the catalog cannot price images: a known model still needs a sell price for them
    const images = priceEvent(base(CATALOG['openai/gpt-4o'], { input_tokens: 10, images: 2 }));
    expect(images).toMatchObject({ ok: false, code: 'component_unpriced', component: 'images' });
  });

  it('prices an event with no usage at zero', () => {
    const r = priceEvent(base(CATALOG['openai/gpt-4o'], {}));
    expect(r).toEqual({ ok: true, credits: 0n, providerCostUsd: 0n, components: [] });
  });

  it('picks the tier whose start the total input exceeds', () => {
    const price = {
      base: '1',
      tiers: [
        { start: 500, price: '3' },
        { start: 100, price: '2' },
      ],
    };
    expect(tierPrice(price, 100n).toDecimal()).toBe('1');
    expect(tierPrice(price, 101n).toDecimal()).toBe('2');
    expect(tierPrice(price, 500n).toDecimal()).toBe('2');
    expect(tierPrice(price, 501n).toDecimal()).toBe('3');
    expect(tierPrice('0.075', 10n ** 9n).toDecimal()).toBe('0.075');
  });
});

describe('model matching (domain)', () => {
  const fable: MatchRule = { or: [{ equals: 'claude-fable-5' }, { regex: '^claude-fable-5-\\d{8}$' }] };
  const gemini: MatchRule = {
    and: [{ starts_with: 'gemini-2.5-pro' }, { regex: '^(?!.*-[tT][tT][sS](?:$|-))' }],
  };

  it('matches case-insensitively, regexes included, as genai-prices does', () => {
    expect(matchesModel(fable, 'claude-fable-5')).toBe(true);
    expect(matchesModel(fable, 'CLAUDE-FABLE-5')).toBe(true);
    expect(matchesModel(fable, 'claude-fable-5-20260301')).toBe(true);
    expect(matchesModel(fable, 'Claude-Fable-5-20260301')).toBe(true);
    expect(matchesModel(fable, ' claude-fable-5 ')).toBe(true);
    expect(matchesModel(fable, 'claude-fable-5-1')).toBe(false);
    expect(matchesModel(fable, 'claude-fable-5-2026030')).toBe(false);
  });

  it('combines rules with and/or', () => {
    expect(matchesModel(gemini, 'gemini-2.5-pro-preview-05-06')).toBe(true);
    expect(matchesModel(gemini, 'Gemini-2.5-Pro')).toBe(true);
    expect(matchesModel(gemini, 'gemini-2.5-pro-tts')).toBe(false);
    expect(matchesModel(gemini, 'gemini-2.5-pro-preview-TTS')).toBe(false);
    expect(matchesModel({ ends_with: '-Latest' }, 'mistral-large-latest')).toBe(true);
    expect(matchesModel({ contains: 'HAIKU' }, 'claude-3-5-haiku-20241022')).toBe(true);
  });

  it('finds instants inside daily windows, across midnight and offsets', () => {
    const offPeak = { start_time: '16:30:00Z', end_time: '00:30:00Z' };
    expect(inTimeOfDay(offPeak, new Date('2026-11-20T16:30:00Z'))).toBe(true);
    expect(inTimeOfDay(offPeak, new Date('2026-11-20T23:59:59Z'))).toBe(true);
    expect(inTimeOfDay(offPeak, new Date('2026-11-21T00:29:59Z'))).toBe(true);
    expect(inTimeOfDay(offPeak, new Date('2026-11-21T00:30:00Z'))).toBe(false);
    expect(inTimeOfDay(offPeak, new Date('2026-11-20T16:29:59Z'))).toBe(false);
    const peak = { start_time: '09:00:00+08:00', end_time: '12:00:00+08:00' }; // 01:00-04:00 UTC
    expect(inTimeOfDay(peak, new Date('2026-11-20T01:00:00Z'))).toBe(true);
    expect(inTimeOfDay(peak, new Date('2026-11-20T03:59:59Z'))).toBe(true);
    expect(inTimeOfDay(peak, new Date('2026-11-20T04:00:00Z'))).toBe(false);
    expect(() => inTimeOfDay({ start_time: '25:00:00Z', end_time: '01:00:00Z' }, new Date())).toThrow(
      RangeError,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Through HTTP, on a real Tally with a fresh database.

let seq = 0;
const event = (model: string, usage: Usage, extra: Record<string, unknown> = {}) => ({
  id: `evt-${++seq}`,
  member: 'u1',
  feature: 'Chat',
  provider: model.split('/')[0],
  model: model.split('/').slice(1).join('/'),
  occurred_at: minutesAgo(1),
  usage,
  ...extra,
});
const providerOf = (c: Case) => c.catalog.split('/')[0]!;

async function send(t: TestTally, key: string, events: unknown[]) {
  const res = await t.call('POST', '/v1/events', { key, body: { events } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.results as {
    id: string;
    status: string;
    credits: string | null;
    cost: string | null;
    currency: string | null;
    error: { code: string; message: string } | null;
  }[];
}

/** The price book rereads the tables at most once a second; writes by the operator need that long. */
const nextPriceCheck = () => new Promise((resolve) => setTimeout(resolve, 1100));

describe('pricing over HTTP', () => {
  let t: TestTally;
  let usd: { org: { id: string }; key: string };
  let eur: { org: { id: string }; key: string };
  beforeAll(async () => {
    t = await startTally();
    usd = await createOrgWithKey(t, { name: 'Dollar Co', currency: 'USD', timezone: 'America/New_York' });
    eur = await createOrgWithKey(t, { name: 'Euro GmbH', currency: 'EUR' });
  });
  afterAll(() => t.close());

  it('serves the catalog prices these tests rely on (GET /v1/models?q=)', async () => {
    for (const [id, prices] of Object.entries(CATALOG)) {
      const [provider, model] = id.split('/') as [string, string];
      const res = await t.call(
        'GET',
        `/v1/models?q=${encodeURIComponent(model)}&provider=${provider}&limit=1000`,
      );
      expect(res.status).toBe(200);
      const row = res.body.data.find((m: { model: string }) => m.model === model);
      expect(row, id).toMatchObject({
        object: 'model_price',
        provider,
        model,
        currency: 'USD',
        origin: 'catalog',
      });
      expect(row.prices, id).toEqual(prices);
    }
  });

  it('searches the catalog by id or name, with cursor pages', async () => {
    const res = await t.call('GET', '/v1/models?q=gpt-4o&limit=1000');
    const ids = res.body.data.map((m: { provider: string; model: string }) => `${m.provider}/${m.model}`);
    expect(ids).toContain('openai/gpt-4o');
    expect(ids).toContain('openai/gpt-4o-mini');
    expect(ids).not.toContain('openai/gpt-4.1');
    expect(res.body.has_more).toBe(false);
    const byName = await t.call('GET', '/v1/models?q=Gemini%202.5%20Pro&provider=google');
    expect(byName.body.data.map((m: { model: string }) => m.model)).toContain('gemini-2.5-pro');
    // paging: two at a time, no duplicates, the same set as one page
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: { provider: string; model: string }[]; next_cursor: string | null } } =
        await t.call(
          'GET',
          `/v1/models?q=gpt-4o&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
      seen.push(...page.body.data.map((m) => `${m.provider}/${m.model}`));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);
  });

  it('prices every case for a USD org and a EUR org (POST /v1/events)', async () => {
    const forUsd = CASES.map((c) => event(`${providerOf(c)}/${c.model}`, c.usage));
    const usdResults = await send(t, usd.key, forUsd);
    usdResults.forEach((r, i) => {
      const c = CASES[i]!;
      expect({ title: c.title, ...r }).toEqual({
        title: c.title,
        id: forUsd[i]!.id,
        status: 'accepted',
        credits: c.usd[0],
        cost: c.usd[1],
        currency: 'USD',
        error: null,
      });
    });
    const forEur = CASES.map((c) => event(`${providerOf(c)}/${c.model}`, c.usage));
    const eurResults = await send(t, eur.key, forEur);
    eurResults.forEach((r, i) => {
      const c = CASES[i]!;
      expect({
        title: c.title,
        status: r.status,
        credits: r.credits,
        cost: r.cost,
        currency: r.currency,
      }).toEqual({
        title: c.title,
        status: 'accepted',
        credits: c.eur[0],
        cost: c.eur[1],
        currency: 'EUR',
      });
    });
  });

  it('stores a cost breakdown per component that adds up to the event', async () => {
    const haiku = caseOf('claude-3-5-haiku');
    const [r] = await send(t, usd.key, [event(`anthropic/${haiku.model}`, haiku.usage)]);
    const [row] = await t.db.query<{
      credits: string;
      cost: string;
      provider_cost_usd: string;
      components: { component: string; quantity: string; credits: string; provider_cost_usd: string }[];
    }>(
      'SELECT credits::text AS credits, cost::text AS cost, provider_cost_usd::text AS provider_cost_usd, components FROM events WHERE org_id = $1 AND id = $2',
      [usd.org.id, r!.id],
    );
    expect(row!.credits).toBe('9420000'); // micro-credits
    expect(units(row!.cost, 12)).toBe(units('0.0942', 12));
    expect(units(row!.provider_cost_usd, 10)).toBe(units('0.0628', 10));
    const byKind = Object.fromEntries(row!.components.map((c) => [c.component, c]));
    expect(byKind).toEqual({
      input: { component: 'input', quantity: '10000', credits: '1.2', provider_cost_usd: '0.008' },
      cache_read: {
        component: 'cache_read',
        quantity: '60000',
        credits: '0.72',
        provider_cost_usd: '0.0048',
      },
      cache_write: { component: 'cache_write', quantity: '30000', credits: '4.5', provider_cost_usd: '0.03' },
      output: { component: 'output', quantity: '5000', credits: '3', provider_cost_usd: '0.02' },
    });

    // And for every event this org has: parts sum to the totals, to the last unit.
    const rows = await t.db.query<{
      id: string;
      credits: string;
      provider_cost_usd: string;
      components: { credits: string; provider_cost_usd: string }[];
    }>(
      'SELECT id, credits::text AS credits, provider_cost_usd::text AS provider_cost_usd, components FROM events WHERE org_id = $1',
      [usd.org.id],
    );
    expect(rows.length).toBe(CASES.length + 1);
    for (const e of rows) {
      const credits = e.components.reduce((a, c) => a + units(c.credits, 6), 0n);
      const cost = e.components.reduce((a, c) => a + units(c.provider_cost_usd, 10), 0n);
      expect(credits, e.id).toBe(BigInt(e.credits));
      expect(cost, e.id).toBe(units(e.provider_cost_usd, 10));
    }
  });

  it('rejects an unknown model, naming it', async () => {
    const [r] = await send(t, usd.key, [event('openai/gpt-unheard-of-9', { input_tokens: 10 })]);
    expect(r).toMatchObject({
      status: 'rejected',
      credits: null,
      cost: null,
      error: { code: 'model_unpriced' },
    });
    expect(r!.error!.message).toContain('gpt-unheard-of-9');
    const [other] = await send(t, usd.key, [event('nosuchprovider/gpt-4o', { input_tokens: 10 })]);
    expect(other).toMatchObject({ status: 'rejected', error: { code: 'model_unpriced' } });
  });

  it('rejects images on a model the catalog cannot price them for', async () => {
    const [r] = await send(t, usd.key, [event('openai/gpt-4o', { input_tokens: 10, images: 1 })]);
    expect(r).toMatchObject({ status: 'rejected', error: { code: 'model_unpriced' } });
    expect(r!.error!.message).toContain('images');
  });

  it('refuses more 1-hour cache writes than cache writes, naming cache_write_1h_tokens (422)', async () => {
    for (const [usage, detail] of [
      [
        { input_tokens: 100, cache_write_tokens: 10, cache_write_1h_tokens: 11 },
        'cache_write_1h_tokens (11) may not exceed cache_write_tokens (10)',
      ],
      [
        { input_tokens: 100, cache_write_1h_tokens: 1 },
        'cache_write_1h_tokens (1) may not exceed cache_write_tokens (0)',
      ],
      [{ input_tokens: 100, cache_write_tokens: 10, cache_write_1h_tokens: -1 }, 'must not be negative'],
      [{ input_tokens: 100, cache_write_tokens: 10, cache_write_1h_tokens: 1.5 }, 'whole number'],
    ] as const) {
      const res = await t.call('POST', '/v1/events', {
        key: usd.key,
        body: { events: [event('anthropic/claude-sonnet-4-0', usage)] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body).toMatchObject({
        code: 'invalid_field',
        param: 'events[0].usage.cache_write_1h_tokens',
      });
      expect(res.body.detail).toContain(detail);
    }
    // Every cache write may be a 1-hour one: 10 x 6/1M + 90 x 3/1M = 0.00033 x 1.5 = 0.000495 USD
    // -> 0.0495 credits.
    const [all] = await send(t, usd.key, [
      event('anthropic/claude-sonnet-4-0', {
        input_tokens: 100,
        cache_write_tokens: 10,
        cache_write_1h_tokens: 10,
      }),
    ]);
    expect(all).toMatchObject({ status: 'accepted', credits: '0.0495' });
  });

  it('refuses more cached audio than cache reads or audio input, naming cache_audio_read_tokens (422)', async () => {
    for (const [usage, detail] of [
      [
        { input_tokens: 100, cache_read_tokens: 10, input_audio_tokens: 50, cache_audio_read_tokens: 11 },
        'cache_audio_read_tokens (11) may not exceed cache_read_tokens (10) or input_audio_tokens (50)',
      ],
      [
        { input_tokens: 100, cache_read_tokens: 60, input_audio_tokens: 20, cache_audio_read_tokens: 21 },
        'cache_audio_read_tokens (21) may not exceed cache_read_tokens (60) or input_audio_tokens (20)',
      ],
    ] as const) {
      const res = await t.call('POST', '/v1/events', {
        key: usd.key,
        body: { events: [event('openai/gpt-realtime-mini', usage)] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body).toMatchObject({
        code: 'invalid_field',
        param: 'events[0].usage.cache_audio_read_tokens',
      });
      expect(res.body.detail).toContain(detail);
    }
  });

  it('refuses cache writes and audio input that together exceed the input, naming input_audio_tokens (422)', async () => {
    // 60 written to the cache (text) and 60 audio cannot both be among 100 input tokens: priced, the
    // event would have been billed for 120.
    for (const usage of [
      { input_tokens: 100, cache_write_tokens: 60, input_audio_tokens: 60 },
      { input_tokens: 100, cache_read_tokens: 30, cache_write_tokens: 60, input_audio_tokens: 50 },
    ]) {
      const res = await t.call('POST', '/v1/events', {
        key: usd.key,
        body: { events: [event('openai/gpt-realtime-mini', usage)] },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body).toMatchObject({ code: 'invalid_field', param: 'events[0].usage.input_audio_tokens' });
    }
    // Audio that is also cached takes no more room than the larger of the two.
    const [fits] = await send(t, usd.key, [
      event('openai/gpt-realtime-mini', {
        input_tokens: 100,
        cache_read_tokens: 40,
        cache_write_tokens: 50,
        input_audio_tokens: 50,
        output_tokens: 1,
      }),
    ]);
    expect(fits).toMatchObject({ status: 'accepted' });
  });

  it('prices 1-hour cache writes as cache writes on a catalog model without a 1-hour price', async () => {
    // Claude Sonnet 4 on Vertex (google/claude-4-sonnet) has no cache_write_1h_mtok: uncached 5000 x
    // 3/1M = 0.015; read 3000 x 0.3/1M = 0.0009; all 2000 writes x 3.75/1M = 0.0075; output 800 x
    // 15/1M = 0.012; total 0.0354 x 1.5 = 0.0531 USD -> 5.31 credits
    const { usage } = caseOf('claude-sonnet-4, 5-minute');
    const [r] = await send(t, usd.key, [event('google/claude-sonnet-4@20250514', usage)]);
    expect(r).toMatchObject({ status: 'accepted', credits: '5.31', cost: '0.0531' });
  });

  it('lists the 1-hour cache write sell price where the catalog has one (GET /v1/prices)', async () => {
    const ids = async (q: string) => {
      const res = await t.call('GET', `/v1/prices?q=${encodeURIComponent(q)}&limit=100`);
      expect(res.status).toBe(200);
      return new Map(res.body.data.map((r: { id: string }) => [r.id, r]));
    };
    const sonnet = await ids('anthropic/claude-sonnet-4-0/cache_write');
    // per 1 000 tokens: 3.75/1000 x 1.5 = 0.005625 (5 minutes); 6/1000 x 1.5 = 0.009 (1 hour)
    expect(sonnet.get('anthropic/claude-sonnet-4-0/cache_write')).toMatchObject({ price: '0.005625' });
    expect(sonnet.get('anthropic/claude-sonnet-4-0/cache_write_1h')).toMatchObject({
      component: 'cache_write_1h',
      unit: 'per_1k_tokens',
      price: '0.009',
      currency: 'USD',
      source: 'markup',
      operation: expect.stringContaining('Cache write tokens (1 hour)'),
    });
    // long context: 12/1000 x 1.5 = 0.018 above 200k input tokens
    const sonnet45 = await ids('anthropic/claude-sonnet-4-5/cache_write_1h');
    expect(sonnet45.get('anthropic/claude-sonnet-4-5/cache_write_1h')).toMatchObject({
      price: '0.009',
      long_context: [{ above_input_tokens: 200000, price: '0.018' }],
    });
    const vertex = await ids('google/claude-4-sonnet/cache_write');
    expect([...vertex.keys()]).toEqual(['google/claude-4-sonnet/cache_write']);
  });

  it('prices an unknown model for one org through its own sell price (POST /v1/prices)', async () => {
    const other = await createOrgWithKey(t, { name: 'Other Inc', currency: 'USD', timezone: 'UTC' });
    const price = (component: string, p: string, unit: string, extra: Record<string, unknown> = {}) => ({
      provider: 'acme',
      model: 'acme-llm-1',
      component,
      price: p,
      unit,
      currency: 'USD',
      org_id: usd.org.id,
      ...extra,
    });
    const byOrg = await t.call('POST', '/v1/prices', {
      key: usd.key,
      body: price('input', '0.002', 'per_1k_tokens'),
    });
    expect(byOrg.status).toBe(403);
    const wrongCurrency = await t.call('POST', '/v1/prices', {
      body: price('input', '0.002', 'per_1k_tokens', { org_id: eur.org.id }),
    });
    expect(wrongCurrency.status).toBe(422);
    expect(wrongCurrency.body.param).toBe('currency');

    const input = await t.call('POST', '/v1/prices', { body: price('input', '0.002', 'per_1k_tokens') });
    expect(input.status, JSON.stringify(input.body)).toBe(201);
    expect(input.body).toMatchObject({ object: 'sell_price', org_id: usd.org.id, price: '0.002' });
    const output = await t.call('POST', '/v1/prices', { body: price('output', '4', 'per_1m_tokens') });
    expect(output.status).toBe(201);
    await nextPriceCheck();

    const usage = { input_tokens: 1500, output_tokens: 2500 };
    const at = new Date().toISOString();
    // 1500 x 0.002/1000 = 0.003; 2500 x 4/1M = 0.01; 0.013 USD / 0.01 = 1.3 credits
    const [mine] = await send(t, usd.key, [event('acme/acme-llm-1', usage, { occurred_at: at })]);
    expect(mine).toMatchObject({ status: 'accepted', credits: '1.3', cost: '0.013', currency: 'USD' });
    const [theirs] = await send(t, other.key, [event('acme/acme-llm-1', usage, { occurred_at: at })]);
    expect(theirs).toMatchObject({ status: 'rejected', error: { code: 'model_unpriced' } });
    expect(theirs!.error!.message).toContain('acme-llm-1');
    // an event from before the price existed is not priced by it
    const [before] = await send(t, usd.key, [
      event('acme/acme-llm-1', usage, { occurred_at: minutesAgo(5) }),
    ]);
    expect(before).toMatchObject({ status: 'rejected' });

    // the org's price list shows its own price; the other org's does not
    const list = await t.call('GET', '/v1/prices?q=acme', { key: usd.key });
    expect(list.body.data).toEqual([
      expect.objectContaining({
        id: 'acme/acme-llm-1/input',
        price: '0.002',
        unit: 'per_1k_tokens',
        source: 'sell_price',
      }),
      expect.objectContaining({
        id: 'acme/acme-llm-1/output',
        price: '4',
        unit: 'per_1m_tokens',
        source: 'sell_price',
      }),
    ]);
    const theirList = await t.call('GET', '/v1/prices?q=acme', { key: other.key });
    expect(theirList.body.data).toEqual([]);
  });

  it('lists per-1k-token sell prices consistent with markup and FX (GET /v1/prices?q=gpt-4o)', async () => {
    const all = async (query: string, key?: string) => {
      const rows: { id: string; operation: string; price: string; currency: string; unit: string }[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { data: typeof rows; next_cursor: string | null } } = await t.call(
          'GET',
          `/v1/prices?${query}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          { key },
        );
        expect(res.status).toBe(200);
        rows.push(...res.body.data);
        cursor = res.body.next_cursor;
      } while (cursor);
      return new Map(rows.map((r) => [r.id, r]));
    };
    const inUsd = await all('q=gpt-4o');
    for (const r of inUsd.values()) expect(`${r.id} ${r.operation}`.toLowerCase()).toContain('gpt-4o');
    // per 1 000 tokens: catalog per 1M / 1000 x 1.5 (x 0.92 in EUR)
    expect(inUsd.get('openai/gpt-4o/input')).toMatchObject({
      price: '0.00375',
      currency: 'USD',
      unit: 'per_1k_tokens',
    }); // 2.5
    expect(inUsd.get('openai/gpt-4o/cache_read')).toMatchObject({ price: '0.001875' }); // 1.25
    expect(inUsd.get('openai/gpt-4o/output')).toMatchObject({ price: '0.015' }); // 10
    expect(inUsd.get('openai/gpt-4o/web_searches')).toMatchObject({ price: '0.015', unit: 'per_request' }); // 10/1000 x 1.5
    expect(inUsd.get('openai/gpt-4o-mini/input')).toMatchObject({ price: '0.000225' }); // 0.15
    expect(inUsd.has('openai/gpt-4.1/input')).toBe(false);

    const inEur = await all('q=gpt-4o&currency=EUR');
    expect(inEur.get('openai/gpt-4o/input')).toMatchObject({ price: '0.00345', currency: 'EUR' });
    expect(inEur.get('openai/gpt-4o/cache_read')).toMatchObject({ price: '0.001725' });
    expect(inEur.get('openai/gpt-4o/output')).toMatchObject({ price: '0.0138' });
    // an org key sees its own currency
    const orgView = await all('q=gpt-4o', eur.key);
    expect(orgView.get('openai/gpt-4o/output')).toMatchObject({ price: '0.0138', currency: 'EUR' });

    const gemini = await all('q=gemini-2.5-pro/');
    expect(gemini.get('google/gemini-2.5-pro/input')).toMatchObject({
      price: '0.001875', // 1.25/1000 x 1.5
      long_context: [{ above_input_tokens: 200000, price: '0.00375' }], // 2.5/1000 x 1.5
    });
    const whisper = await all('q=whisper-1');
    expect(whisper.get('openai/whisper-1/seconds')).toMatchObject({ price: '0.009', unit: 'per_minute' }); // 0.36/60 x 1.5
  });

  it("shows an org that pays its provider itself the provider's prices in USD, and the operator any org's list (GET /v1/prices)", async () => {
    const pricesOf = async (query: string, key?: string) => {
      const res = await t.call('GET', `/v1/prices?${query}&limit=100`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return new Map(res.body.data.map((r: { id: string }) => [r.id, r]));
    };
    // gpt-4o output: 10 USD per 1M tokens at the provider = 0.01 per 1 000, whatever the org's currency
    for (const billing_mode of ['byom', 'byok']) {
      const own = await createOrgWithKey(t, { name: `Own ${billing_mode}`, currency: 'EUR', billing_mode });
      const list = await pricesOf('q=openai/gpt-4o/output', own.key);
      expect(list.get('openai/gpt-4o/output')).toMatchObject({
        price: '0.01',
        currency: 'USD',
        source: 'provider_cost',
      });
      const inEur = await t.call('GET', '/v1/prices?q=gpt-4o&currency=EUR', { key: own.key });
      expect(inEur.status).toBe(422);
      expect(inEur.body).toMatchObject({ param: 'currency', detail: expect.stringContaining(billing_mode) });
      // The operator naming the org sees what it sees.
      const operatorView = await pricesOf(`q=openai/gpt-4o/output&org_id=${own.org.id}`);
      expect(operatorView.get('openai/gpt-4o/output')).toMatchObject({ price: '0.01', currency: 'USD' });
    }
    // The operator naming a credits org in EUR sees its currency: 10/1000 x 1.5 x 0.92
    const eurView = await pricesOf(`q=openai/gpt-4o/output&org_id=${eur.org.id}`);
    expect(eurView.get('openai/gpt-4o/output')).toMatchObject({
      price: '0.0138',
      currency: 'EUR',
      source: 'markup',
    });
    const unknown = await t.call('GET', '/v1/prices?org_id=org_missing');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ param: 'org_id' });
    // A key naming another org learns nothing about it: answered exactly as a missing org.
    const answer = async (orgId: string) => {
      const res = await t.call('GET', `/v1/prices?org_id=${orgId}`, { key: usd.key });
      const { request_id: _, ...body } = res.body;
      return { status: res.status, body };
    };
    expect(await answer(eur.org.id)).toEqual(await answer('org_missing'));
    expect((await answer(eur.org.id)).status).toBe(404);
  });

  it('shows BYOM orgs their provider cost in USD, rounded once half-to-even to micro-dollars, and charges no credits', async () => {
    const byomUsd = await createOrgWithKey(t, {
      name: 'Own Keys LLC',
      currency: 'USD',
      timezone: 'UTC',
      billing_mode: 'byom',
    });
    const byomEur = await createOrgWithKey(t, { name: 'Eigene AG', currency: 'EUR', billing_mode: 'byom' });
    const picks = [
      caseOf('gpt-4o, plain'),
      caseOf('OpenAI cached input'),
      caseOf('claude-3-5-haiku'),
      caseOf('at 200001'),
    ];
    // 0.5150025 USD is a tie at 6 decimals: half-to-even keeps 0.515002.
    const byomCost = ['0.0075', '0.03', '0.0628', '0.515002'];
    for (const org of [byomUsd, byomEur]) {
      const results = await send(
        t,
        org.key,
        picks.map((c) => event(`${providerOf(c)}/${c.model}`, c.usage)),
      );
      results.forEach((r, i) => {
        expect(r).toMatchObject({
          status: 'accepted',
          credits: '0',
          cost: byomCost[i],
          currency: 'USD',
        });
      });
    }
  });
});

describe('operator price changes over HTTP', () => {
  let t: TestTally;
  let usd: { org: { id: string }; key: string };
  beforeAll(async () => {
    t = await startTally();
    usd = await createOrgWithKey(t, { name: 'Dollar Co', currency: 'USD', timezone: 'UTC' });
  });
  afterAll(() => t.close());

  it('overrides a model price from a future valid_from: earlier events keep the old price', async () => {
    const usage = { input_tokens: 1000, output_tokens: 1000 };
    const validFrom = new Date(Date.now() + 60_000);
    // The route's `prices` record currently insists on every price key (see the report: it should
    // be a partial record), so the override names them all; the test reads only input and output.
    const prices = {
      input_mtok: '1',
      cache_read_mtok: '0.25',
      cache_write_mtok: '1.25',
      input_audio_mtok: '1',
      output_mtok: '4',
      output_audio_mtok: '4',
      web_searches_kcount: '10',
      requests_kcount: '0',
      audio_hours: '0.36',
    };
    const res = await t.call('POST', '/v1/models', {
      body: { provider: 'openai', model: 'gpt-4.1-nano', prices, valid_from: validFrom.toISOString() },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ origin: 'operator', valid_from: validFrom.toISOString() });
    const asOrg = await t.call('POST', '/v1/models', {
      key: usd.key,
      body: { provider: 'openai', model: 'gpt-4.1-nano', prices },
    });
    expect(asOrg.status).toBe(403);
    const past = await t.call('POST', '/v1/models', {
      body: {
        provider: 'openai',
        model: 'gpt-4.1-nano',
        prices,
        valid_from: minutesAgo(10),
      },
    });
    expect(past.status).toBe(422);
    expect(past.body.param).toBe('valid_from');
    await nextPriceCheck();

    const [before, justBefore, after] = await send(t, usd.key, [
      // catalog: 1000 x 0.1/1M + 1000 x 0.4/1M = 0.0005 x 1.5 = 0.00075 -> 0.075 credits
      event('openai/gpt-4.1-nano', usage, { occurred_at: minutesAgo(1) }),
      event('openai/gpt-4.1-nano', usage, { occurred_at: new Date(validFrom.getTime() - 1).toISOString() }),
      // override: 1000 x 1/1M + 1000 x 4/1M = 0.005 x 1.5 = 0.0075 -> 0.75 credits
      event('openai/gpt-4.1-nano', usage, { occurred_at: new Date(Date.now() + 3 * 60_000).toISOString() }),
    ]);
    expect(before).toMatchObject({ status: 'accepted', credits: '0.075', cost: '0.00075' });
    expect(justBefore).toMatchObject({ status: 'accepted', credits: '0.075', cost: '0.00075' });
    expect(after).toMatchObject({ status: 'accepted', credits: '0.75', cost: '0.0075' });

    // the catalog in force now is still the old price
    const now = await t.call('GET', '/v1/models?q=gpt-4.1-nano&provider=openai');
    const nano = now.body.data.find((m: { model: string }) => m.model === 'gpt-4.1-nano');
    expect(nano).toMatchObject({ origin: 'catalog', prices: CATALOG['openai/gpt-4.1-nano'] });
  });

  it('takes a 1-hour cache write price in an operator model price (POST /v1/models)', async () => {
    const prices = { input_mtok: '2', cache_write_mtok: '2.5', cache_write_1h_mtok: '4', output_mtok: '10' };
    const res = await t.call('POST', '/v1/models', {
      body: { provider: 'acme-ai', model: 'acme-cache-1', prices },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ origin: 'operator', prices });
    const usage = {
      input_tokens: 10000,
      cache_write_tokens: 3000,
      cache_write_1h_tokens: 1000,
      output_tokens: 1000,
    };
    // uncached 7000 x 2/1M = 0.014; 5m write 2000 x 2.5/1M = 0.005; 1h write 1000 x 4/1M = 0.004;
    // output 1000 x 10/1M = 0.01; total 0.033 x 1.5 = 0.0495 USD -> 4.95 credits
    const [r] = await send(t, usd.key, [
      event('acme-ai/acme-cache-1', usage, { occurred_at: new Date().toISOString() }),
    ]);
    expect(r).toMatchObject({ status: 'accepted', credits: '4.95', cost: '0.0495' });
  });

  it('changes the default markup for new events only (PUT /v1/settings/pricing)', async () => {
    const usage = { input_tokens: 1000, output_tokens: 500 };
    const first = event('openai/gpt-4o', usage);
    const [old] = await send(t, usd.key, [first]);
    expect(old).toMatchObject({ status: 'accepted', credits: '1.125', cost: '0.01125' }); // 0.0075 x 1.5

    const byOrg = await t.call('PUT', '/v1/settings/pricing', {
      key: usd.key,
      body: { default_markup: '2' },
    });
    expect(byOrg.status).toBe(403);
    const set = await t.call('PUT', '/v1/settings/pricing', { body: { default_markup: '2' } });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ default_markup: '2', fx_rates: { USD: '1' } });
    expect(units(set.body.fx_rates.EUR, 10)).toBe(units('0.92', 10)); // served as "0.9200000000" today

    const [fresh, again] = await send(t, usd.key, [event('openai/gpt-4o', usage), first]);
    expect(fresh).toMatchObject({ status: 'accepted', credits: '1.5', cost: '0.015' }); // 0.0075 x 2
    expect(again).toMatchObject({ status: 'duplicate', credits: '1.125', cost: '0.01125' });
    const [stored] = await t.db.query<{ credits: string; pricing: { markup: string } }>(
      'SELECT credits::text AS credits, pricing FROM events WHERE org_id = $1 AND id = $2',
      [usd.org.id, first.id],
    );
    expect(stored).toMatchObject({ credits: '1125000', pricing: { markup: '1.5' } });

    const list = await t.call('GET', '/v1/prices?q=openai/gpt-4o/output');
    expect(list.body.data[0]).toMatchObject({ id: 'openai/gpt-4o/output', price: '0.02' }); // 10/1000 x 2
    await t.call('PUT', '/v1/settings/pricing', { body: { default_markup: '1.5' } });
  });
});

describe('per-event ceiling over HTTP (TALLY_MAX_EVENT_COST=1)', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally({ TALLY_MAX_EVENT_COST: '1' });
  });
  afterAll(() => t.close());

  it('rejects an event above the ceiling in the org currency, with amount_too_large', async () => {
    const usd = await createOrgWithKey(t, { name: 'Dollar Co', currency: 'USD', timezone: 'UTC' });
    const eur = await createOrgWithKey(t, { name: 'Euro GmbH', currency: 'EUR' });
    const events = () => [
      // 266666 x 2.5/1M = 0.666665 x 1.5 = 0.9999975 USD: under 1
      event('openai/gpt-4o', { input_tokens: 266666 }),
      // 266667 x 2.5/1M = 0.6666675 x 1.5 = 1.00000125 USD: over 1 (x 0.92 = 0.92000115 EUR: under)
      event('openai/gpt-4o', { input_tokens: 266667 }),
      // 100000 x 75/1M = 7.5 x 1.5 = 11.25 USD
      event('anthropic/claude-opus-4-1', { input_tokens: 10, output_tokens: 100000 }),
    ];
    const [a, b, c] = await send(t, usd.key, events());
    expect(a).toMatchObject({ status: 'accepted', credits: '99.99975', cost: '0.9999975' });
    expect(b).toMatchObject({ status: 'rejected', credits: null, error: { code: 'amount_too_large' } });
    expect(c).toMatchObject({ status: 'rejected', error: { code: 'amount_too_large' } });
    const [, eb, ec] = await send(t, eur.key, events());
    expect(eb).toMatchObject({
      status: 'accepted',
      credits: '92.000115',
      cost: '0.92000115',
      currency: 'EUR',
    });
    expect(ec).toMatchObject({ status: 'rejected', error: { code: 'amount_too_large' } });
    const [count] = await t.db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM events WHERE org_id = $1',
      [usd.org.id],
    );
    expect(count!.n).toBe('1');
  });
});
