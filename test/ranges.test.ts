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
    // Two whole days across the start of summer time (47 hours) compare with the two days before
    // them (48 hours), from local midnight, not with the 47 hours before.
    expect(iso(r.previous)).toEqual(['2026-03-25T23:00:00.000Z', '2026-03-27T23:00:00.000Z']);
    // Across the end of summer time: 14 days of 337 hours against the 14 days before, from midnight.
    const autumn = resolveRange(
      { range: 'custom', from: '2025-10-20', to: '2025-11-02' },
      berlin('2026-04-01T00:00:00Z'),
    );
    expect(iso(autumn.previous)).toEqual(['2025-10-05T22:00:00.000Z', '2025-10-19T22:00:00.000Z']);
    const i = resolveRange(
      { from: '2026-03-01T10:15:00+01:00', to: '2026-03-20T12:00:00Z' },
      berlin('2026-04-01T00:00:00Z'),
    );
    expect(i.range).toBe('custom');
    expect(iso(i)).toEqual(['2026-03-01T09:00:00.000Z', '2026-03-20T12:00:00.000Z']);
    // Instants compare with the same length of time just before.
    expect(iso(i.previous)).toEqual(['2026-02-10T06:00:00.000Z', '2026-03-01T09:00:00.000Z']);
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

  it("takes the month, cycle and day of the hour in progress in the half hour before a half-hour zone's midnight", () => {
    // 23:40 on 31 May in Kolkata (+05:30) is 18:10Z. June starts at 18:30Z, floored to 18:00Z, so
    // the hour in progress (18:00Z to 19:00Z) is June's first: mtd is that hour, compared with May's
    // first hour, and the whole of May (floored) is last_month.
    const kolkata = (now: string, anchor = 1) => ({
      zone: 'Asia/Kolkata',
      cycleAnchorDay: anchor,
      now: at(now),
    });
    for (const now of ['2026-05-31T18:10:00Z', '2026-05-31T18:40:00Z']) {
      const mtd = resolveRange({ range: 'mtd' }, kolkata(now));
      expect(iso(mtd), now).toEqual(['2026-05-31T18:00:00.000Z', '2026-05-31T19:00:00.000Z']);
      expect(iso(mtd.previous), now).toEqual(['2026-04-30T18:00:00.000Z', '2026-04-30T19:00:00.000Z']);
      expect(iso(resolveRange({ range: 'cycle' }, kolkata(now))), now).toEqual(iso(mtd));
      expect(iso(resolveRange({ range: 'last_month' }, kolkata(now))), now).toEqual([
        '2026-04-30T18:00:00.000Z',
        '2026-05-31T18:00:00.000Z',
      ]);
      // 7d: June 1 (its first hour) and the six days before, from 26 May 00:00 IST floored.
      expect(iso(resolveRange({ range: '7d' }, kolkata(now))), now).toEqual([
        '2026-05-25T18:00:00.000Z',
        '2026-05-31T19:00:00.000Z',
      ]);
    }
    // Half an hour earlier the hour in progress (17:00Z to 18:00Z) is May's last.
    expect(iso(resolveRange({ range: 'mtd' }, kolkata('2026-05-31T17:50:00Z')))).toEqual([
      '2026-04-30T18:00:00.000Z',
      '2026-05-31T18:00:00.000Z',
    ]);
    // Kathmandu (+05:45): 23:50 on 31 May is 18:05Z; June starts at 18:15Z, floored to 18:00Z.
    const kathmandu = { zone: 'Asia/Kathmandu', cycleAnchorDay: 1, now: at('2026-05-31T18:05:00Z') };
    expect(iso(resolveRange({ range: 'mtd' }, kathmandu))).toEqual([
      '2026-05-31T18:00:00.000Z',
      '2026-05-31T19:00:00.000Z',
    ]);
    // St. John's (-02:30 in summer): 23:40 on 31 May is 02:10Z on 1 June; June starts at 02:30Z.
    const stJohns = { zone: 'America/St_Johns', cycleAnchorDay: 1, now: at('2026-06-01T02:10:00Z') };
    expect(iso(resolveRange({ range: 'mtd' }, stJohns))).toEqual([
      '2026-06-01T02:00:00.000Z',
      '2026-06-01T03:00:00.000Z',
    ]);
  });

  it('ranges up to now hold the hour in progress and depend on nothing finer than it, in every kind of zone', () => {
    const zones = [
      'UTC',
      'Europe/Berlin',
      'America/New_York',
      'Asia/Kolkata',
      'Asia/Kathmandu',
      'America/St_Johns',
      'Australia/Adelaide', // +09:30, +10:30 in summer
      'Australia/Lord_Howe', // +10:30, +11 in summer: a half-hour DST change
    ];
    // Around the ends of May and of October (Adelaide and Lord Howe on summer time, New York and
    // Berlin not yet off it), at 5, 25 and 45 minutes past each hour.
    for (const from of ['2026-05-31T12:05:00Z', '2026-10-31T12:05:00Z']) {
      for (let t = at(from).getTime(); t < at(from).getTime() + 86_400_000; t += 1_200_000) {
        const now = new Date(t);
        const hour = new Date(Math.floor(t / 3_600_000) * 3_600_000);
        for (const zone of zones) {
          const settings = { zone, cycleAnchorDay: 1, now };
          const label = `${zone} ${now.toISOString()}`;
          for (const range of ['mtd', 'cycle', '7d'] as const) {
            const r = resolveRange({ range }, settings);
            expect(r.start <= now && now < r.end, `${label} ${range}`).toBe(true);
            expect(r.end.getTime(), `${label} ${range}`).toBe(hour.getTime() + 3_600_000);
          }
          const mtd = resolveRange({ range: 'mtd' }, settings);
          expect(iso(mtd), label).toEqual(iso(resolveRange({ range: 'mtd' }, { ...settings, now: hour })));
          expect(resolveRange({ range: 'last_month' }, settings).end, label).toEqual(mtd.start);
        }
      }
    }
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
    expect(trendOf(150n, 100n).label).toBe('+50%');
    expect(trendOf(50n, 100n).label).toBe('-50%');
    expect(trendOf(1004n, 1000n).label).toBe('flat');
    expect(trendOf(1005n, 1000n).label).toBe('flat'); // 0.5 rounds half to even: 0
    expect(trendOf(1015n, 1000n).label).toBe('+2%');
    expect(trendOf(0n, 0n).label).toBe('flat');
    expect(trendOf(5n, 0n)).toEqual({ direction: 'new', percent: null, label: 'new' });
  });
});
