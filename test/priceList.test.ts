/**
 * Catalog price lists are evaluated as genai-prices evaluates them (the last entry whose condition
 * holds wins), including after a newer catalog changes a model's list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pickListEntry } from '../src/domain/priceList.ts';
import { loadCatalog } from '../src/services/pricing/loadCatalog.ts';
import { startTally, type TestTally } from './support/harness.ts';

const at = (iso: string) => new Date(iso);
const window = (start_time: string, end_time: string) => ({ start_time, end_time });

describe('pickListEntry (domain)', () => {
  // The layout genai-prices uses for DeepSeek V4: a flat rate, an off-peak rate from a date, two peak windows.
  const list = [
    { name: 'flat', valid_from: at('1970-01-01T00:00:00Z'), time_of_day: null, list_position: 0 },
    { name: 'off-peak', valid_from: at('2026-08-17T00:00:00Z'), time_of_day: null, list_position: 1 },
    {
      name: 'peak-1',
      valid_from: at('1970-01-01T00:00:00Z'),
      time_of_day: window('01:00:00Z', '04:00:00Z'),
      list_position: 2,
    },
    {
      name: 'peak-2',
      valid_from: at('1970-01-01T00:00:00Z'),
      time_of_day: window('06:00:00Z', '10:00:00Z'),
      list_position: 3,
    },
  ];
  const pick = (iso: string) => pickListEntry(list, at(iso))?.name;

  it('lets a later daily window override an earlier entry gated on a start date', () => {
    expect(pick('2026-09-01T02:30:00Z')).toBe('peak-1');
    expect(pick('2026-09-01T09:59:59Z')).toBe('peak-2');
    expect(pick('2026-09-01T10:00:00Z')).toBe('off-peak');
    expect(pick('2026-09-01T00:59:59Z')).toBe('off-peak');
  });

  it('uses the earlier entries before the start date, whatever order the list is given in', () => {
    expect(pick('2026-08-16T12:00:00Z')).toBe('flat');
    expect(pickListEntry([...list].reverse(), at('2026-08-16T12:00:00Z'))?.name).toBe('flat');
  });

  it('falls back to the first entry when no condition holds', () => {
    const gated = [
      { name: 'first', valid_from: at('2030-01-01T00:00:00Z'), time_of_day: null, list_position: 0 },
      { name: 'second', valid_from: at('2031-01-01T00:00:00Z'), time_of_day: null, list_position: 1 },
    ];
    expect(pickListEntry(gated, at('2026-01-01T00:00:00Z'))?.name).toBe('first');
    expect(pickListEntry([], at('2026-01-01T00:00:00Z'))).toBeNull();
  });
});

describe('catalog lists in the price book', () => {
  let tally: TestTally;
  beforeAll(async () => {
    tally = await startTally();
  });
  afterAll(() => tally.close());

  const input = (row: { prices: Record<string, unknown> } | null) => row?.prices.input_mtok;

  it('prices DeepSeek V4 peak hours at the peak rate after the off-peak start date', () => {
    const offPeak = input(
      tally.prices.providerPrice('deepseek', 'deepseek-v4-flash', at('2026-09-01T12:00:00Z')),
    );
    const peak = input(
      tally.prices.providerPrice('deepseek', 'deepseek-v4-flash', at('2026-09-01T02:00:00Z')),
    );
    const before = input(
      tally.prices.providerPrice('deepseek', 'deepseek-v4-flash', at('2026-08-10T12:00:00Z')),
    );
    // Figures of the catalog shipped with the installed @pydantic/genai-prices.
    expect(before).toBe('0.14');
    expect(offPeak).toBe('0.22');
    expect(peak).toBe('0.44');
  });

  it('keeps old prices for old instants and the new list from its load on, when a newer catalog changes it', async () => {
    const provider = {
      id: 'acme',
      name: 'Acme',
      api_pattern: 'acme',
      models: [{ id: 'acme-1', match: { equals: 'acme-1' }, prices: { input_mtok: 1, output_mtok: 2 } }],
    };
    const first = await loadCatalog(tally.db, { providers: [provider] as never, version: 'test-1' });
    expect(first.inserted).toBe(1);
    const again = await loadCatalog(tally.db, { providers: [provider] as never, version: 'test-1b' });
    expect(again.inserted).toBe(0);
    const beforeChange = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const changed = {
      ...provider,
      models: [
        {
          ...provider.models[0]!,
          prices: [
            { prices: { input_mtok: 1.5, output_mtok: 3 } },
            { prices: { input_mtok: 0.5, output_mtok: 1 }, constraint: window('20:00:00Z', '04:00:00Z') },
          ],
        },
      ],
    };
    const second = await loadCatalog(tally.db, { providers: [changed] as never, version: 'test-2' });
    expect(second.inserted).toBe(2);
    await tally.prices.refresh(tally.db, true);
    const now = new Date();
    expect(input(tally.prices.providerPrice('acme', 'acme-1', beforeChange))).toBe('1');
    const nightNow = new Date(now);
    nightNow.setUTCHours(now.getUTCHours() >= 20 ? now.getUTCHours() : 23, 0, 0, 0);
    if (nightNow < now) nightNow.setUTCDate(nightNow.getUTCDate() + 1);
    const dayLater = new Date(nightNow);
    dayLater.setUTCHours(12);
    if (dayLater < now) dayLater.setUTCDate(dayLater.getUTCDate() + 1);
    expect(input(tally.prices.providerPrice('acme', 'acme-1', nightNow))).toBe('0.5');
    expect(input(tally.prices.providerPrice('acme', 'acme-1', dayLater))).toBe('1.5');
  });
});
