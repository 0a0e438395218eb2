import { describe, expect, it } from 'vitest';
import { hashSecret, newId, newSecret } from '../src/domain/ids.ts';

describe('ids and secrets', () => {
  it('are prefixed, of the documented length and alphabet, and never repeat across many draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const id = newId('auth');
      expect(id).toMatch(/^auth_[0-9A-Za-z]{20}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(50_000);
    const secrets = new Set(Array.from({ length: 2_000 }, () => newSecret('sk')));
    expect(secrets.size).toBe(2_000);
    for (const s of secrets) expect(s).toMatch(/^tally_sk_[0-9A-Za-z]{40}$/);
  });

  it('use every character of the alphabet about equally often', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      for (const ch of newId('msg').slice(4)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
    // 400 000 characters over 62 symbols: about 6 452 each; a modulo bias would skew the low ones by ~4 %.
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(Math.abs(n - 400_000 / 62)).toBeLessThan(400);
  });

  it('hash secrets to sha-256 hex', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
