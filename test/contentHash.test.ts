import { describe, expect, it } from 'vitest';
import { contentHash, type UsageEventInput } from '../src/domain/usageEvent.ts';

// Stored events keep the hash they were recorded with, and a retry is told from a conflict by
// comparing hashes: these values were computed by the first implementation and must never change.
const event = {
  id: 'evt_1',
  org_id: 'org_x',
  member: 'user-ü',
  feature: 'chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: '2026-12-01T10:00:00+01:00',
  surface: 'web',
  conversation_id: 'c1',
  usage: { output_tokens: 20, input_tokens: 100, cache_read_tokens: 0 },
  metadata: {
    tool: 'search',
    nested: { b: [1, 'x', null, { z: 1, a: '\u2028' }], a: true },
    nul: null,
    é: 'é',
    B: 2,
  },
} as unknown as UsageEventInput;

describe('content hash', () => {
  it('stays the hash earlier versions stored', () => {
    expect(contentHash(event)).toBe('tu2In673GvAfv0fCFX5CdkQ-QJVlMz5NW_LYGrthbBo');
    expect(contentHash({ ...event, metadata: undefined, surface: undefined })).toBe(
      'KqUH_Bt0IumqrWh-2gW9xJEtiJLYApeE3TdhAZC9Pjo',
    );
  });

  it('ignores key order, absent and null fields, zero counts, the org and the spelling of the time', () => {
    const reordered = {
      metadata: {
        B: 2,
        é: 'é',
        nested: { a: true, b: [1, 'x', null, { a: '\u2028', z: 1 }] },
        tool: 'search',
      },
      usage: { input_tokens: 100, output_tokens: 20 },
      occurred_at: '2026-12-01T09:00:00.000Z',
      model: 'gpt-4o',
      provider: 'openai',
      feature: 'chat',
      member: 'user-ü',
      id: 'evt_1',
      surface: 'web',
      conversation_id: 'c1',
      project: undefined,
    } as unknown as UsageEventInput;
    expect(contentHash(reordered)).toBe(contentHash(event));
    expect(contentHash({ ...event, model: 'gpt-4o-mini' })).not.toBe(contentHash(event));
    expect(contentHash({ ...event, metadata: { ...event.metadata, nested: { a: false } } })).not.toBe(
      contentHash(event),
    );
  });
});
