import { describe, expect, it } from 'vitest';
import { RangeInputError, resolveRange, trendOf } from '../src/domain/ranges.ts';

const at = (iso: string) => new Date(iso);
const iso = (r: { start: Date; end: Date }) => [r.start.toISOString(), r.end.toISOString()];
const berlin = (now: string, anchor = 1) => ({ zone: 'Europe/Berlin', cycleAnchorDay: anchor, now: at(now) });

describe('resolveRange', () => {
  it('1d: the 24 hours up to the end of the current hour, hourly', () => {
    const r = resolveRange({ range: '1d' }, berlin('2026-03-10T10:20:00Z'));
    expect(iso(r)).toEqual(['2026-03-09T11:00:00.000Z', '2026-03-10T11:00:00.000Z']);
    expect(iso(r.previous)).toEqual(['2026-03-08T11:00:00.000Z', '2026-03-09T11:00:00.000Z']);
    expect(r.granularity).toBe('hour');
  });

  it('7d across the spring DST change starts at local midnight (CET) and compares 7 days back', () => {
    // Clocks in Berlin go forward on 2026-03-29.
    const r = resolveRange({ range: '7d' }, berlin('2026-03-31T10:00:00Z'));
    expect(iso(r)).toEqual(['2026-03-24T23:00:00.000Z', '2026-03-31T11:00:00.000Z']);
    expect(iso(r.previous)).toEqual(['2026-03-18T11:00:00.000Z', '2026-03-24T23:00:00.000Z']);
    expect(r.granularity).toBe('day');
  });

  it('30d is weekly by default and starts at a local midnight in New York', () => {
    const r = resolveRange(
      { range: '30d' },
      { zone: 'America/New_York', cycleAnchorDay: 1, now: at('2026-11-05T03:00:00Z') },
    );
    // Local date is 2026-11-04 (EST after Nov 1); 29 days earlier is 2026-10-06 (EDT, UTC-4).
    expect(iso(r)).toEqual(['2026-10-06T04:00:00.000Z', '2026-11-05T04:00:00.000Z']);
    expect(r.granularity).toBe('week');
  });

  it('mtd compares with the same elapsed span of last month, capped at its end', () => {
    const r = resolveRange({ range: 'mtd' }, berlin('2026-03-31T10:00:00Z'));
    expect(iso(r)).toEqual(['2026-02-28T23:00:00.000Z', '2026-03-31T11:00:00.000Z']);
    expect(iso(r.previous)).toEqual(['2026-01-31T23:00:00.000Z', '2026-02-28T23:00:00.000Z']);
    const early = resolveRange({ range: 'mtd' }, berlin('2026-03-03T09:30:00Z'));
    expect(iso(early.previous)).toEqual(['2026-01-31T23:00:00.000Z', '2026-02-03T10:00:00.000Z']);
  });

  it('last_month spans a DST change and compares with the whole month before', () => {
    const r = resolveRange({ range: 'last_month' }, berlin('2026-04-15T12:00:00Z'));
    expect(iso(r)).toEqual(['2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z']);
    expect(iso(r.previous)).toEqual(['2026-01-31T23:00:00.000Z', '2026-02-28T23:00:00.000Z']);
  });

  it('cycle follows the anchor day and compares the same elapsed span of the previous cycle', () => {
    const r = resolveRange({ range: 'cycle' }, berlin('2026-04-10T12:00:00Z', 15));
    expect(iso(r)).toEqual(['2026-03-14T23:00:00.000Z', '2026-04-10T13:00:00.000Z']);
    expect(iso(r.previous)).toEqual(['2026-02-14T23:00:00.000Z', '2026-03-13T13:00:00.000Z']);
  });

  it('custom dates are whole local days, `to` included; instants widen to whole UTC hours', () => {
    const r = resolveRange(
      { range: 'custom', from: '2026-03-28', to: '2026-03-29' },
      berlin('2026-04-01T00:00:00Z'),
    );
    expect(iso(r)).toEqual(['2026-03-27T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
    expect(r.granularity).toBe('hour');
    const i = resolveRange(
      { from: '2026-03-01T10:15:00+01:00', to: '2026-03-20T12:00:00Z' },
      berlin('2026-04-01T00:00:00Z'),
    );
    expect(i.range).toBe('custom');
    expect(iso(i)).toEqual(['2026-03-01T09:00:00.000Z', '2026-03-20T12:00:00.000Z']);
    expect(i.granularity).toBe('day');
  });

  it('floors local midnights of half-hour zones to the UTC hour', () => {
    const r = resolveRange(
      { range: 'mtd' },
      { zone: 'Asia/Kolkata', cycleAnchorDay: 1, now: at('2026-03-10T06:00:00Z') },
    );
    // 2026-03-01 00:00 IST is 2026-02-28T18:30Z.
    expect(iso(r)).toEqual(['2026-02-28T18:00:00.000Z', '2026-03-10T07:00:00.000Z']);
  });

  it('names the parameter at fault', () => {
    const now = berlin('2026-04-01T00:00:00Z');
    const param = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e instanceof RangeInputError ? e.param : String(e);
      }
      return null;
    };
    expect(param(() => resolveRange({ range: 'custom', to: '2026-03-01' }, now))).toBe('from');
    expect(param(() => resolveRange({ range: 'custom', from: '2026-03-02', to: '2026-03-01' }, now))).toBe(
      'to',
    );
    expect(param(() => resolveRange({ range: 'custom', from: 'yesterday', to: '2026-03-01' }, now))).toBe(
      'from',
    );
    expect(param(() => resolveRange({ range: '7d', from: '2026-03-01' }, now))).toBe('from');
    expect(param(() => resolveRange({ range: 'custom', from: '2025-01-01', to: '2026-03-01' }, now))).toBe(
      'to',
    );
    expect(
      param(() => resolveRange({ range: 'custom', from: '2025-06-01', to: '2026-03-01' }, now, 'hour')),
    ).toBe('granularity');
  });
});

describe('trendOf', () => {
  it('says +N %, -N %, flat or new', () => {
    expect(trendOf(150n, 100n).label).toBe('+50 %');
    expect(trendOf(50n, 100n).label).toBe('-50 %');
    expect(trendOf(1004n, 1000n).label).toBe('flat');
    expect(trendOf(1005n, 1000n).label).toBe('flat'); // 0.5 rounds half to even: 0
    expect(trendOf(1015n, 1000n).label).toBe('+2 %');
    expect(trendOf(0n, 0n).label).toBe('flat');
    expect(trendOf(5n, 0n)).toEqual({ direction: 'new', percent: null, label: 'new' });
  });
});
