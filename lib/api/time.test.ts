import { describe, expect, it } from '@jest/globals';
import { formatMicroTime, formatTime, parseTime } from './index.js';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 5); // 2026-01-01T00:00:05Z

describe('formatTime (metav1.Time)', () => {
  it.each([
    [T0, '2026-01-01T00:00:05Z'],
    [T0 + 999, '2026-01-01T00:00:05Z'], // cut, not rounded
    [T0 - 5_000, '2026-01-01T00:00:00Z'],
    [Date.UTC(2024, 1, 29, 23, 59, 59), '2024-02-29T23:59:59Z'],
    [0, '1970-01-01T00:00:00Z'],
  ])('%p -> %s', (ms, want) => {
    expect(formatTime(ms)).toBe(want);
  });
});

describe('formatMicroTime (metav1.MicroTime)', () => {
  it.each([
    [T0, '2026-01-01T00:00:05.000000Z'],
    [T0 + 123, '2026-01-01T00:00:05.123000Z'],
    [T0 + 7, '2026-01-01T00:00:05.007000Z'],
    [T0 + 999, '2026-01-01T00:00:05.999000Z'],
  ])('%p -> %s', (ms, want) => {
    expect(formatMicroTime(ms)).toBe(want);
  });
});

describe('parseTime', () => {
  it.each([
    ['2026-01-01T00:00:05Z', T0],
    ['2026-01-01T02:00:05+02:00', T0],
    ['2025-12-31T19:30:05-04:30', T0],
    ['2026-01-01T00:00:05.123Z', T0 + 123],
    ['2026-01-01T00:00:05.123456Z', T0 + 123],
    ['2026-01-01T00:00:05.5Z', T0 + 500],
    ['2026-01-01T01:00:05.250+01:00', T0 + 250],
    ['2026-01-01T00:00:05', T0], // no offset: UTC
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)], // divisible by 400: leap
    ['2026-01-01T00:00:05.123999Z', T0 + 123], // cut, not rounded
    ['0050-01-01T00:00:00Z', -60589296000000], // a two-digit year is not 1950
  ])('%s -> %p', (s, want) => {
    expect(parseTime(s)).toBe(want);
  });

  it.each([
    [''],
    [undefined],
    [null],
    ['not a time'],
    ['2026-01-01'], // date only is not an RFC 3339 date-time
    ['2026-02-30T00:00:00Z'], // no such day
    ['2026-01-01T25:00:00Z'],
    ['2100-02-29T00:00:00Z'], // divisible by 100, not 400: no leap day
    ['2026-04-31T00:00:00Z'],
    ['2026-01-01T00:60:00Z'],
    ['2026-01-01T00:00:05+24:00'],
    ['2026-01-01T00:00:05+0200'],
    [' 2026-01-01T00:00:05Z'],
  ])('%p -> undefined', (s) => {
    expect(parseTime(s)).toBeUndefined();
  });

  it('round-trips both formats', () => {
    expect(parseTime(formatTime(T0 + 999))).toBe(T0);
    expect(parseTime(formatMicroTime(T0 + 42))).toBe(T0 + 42);
  });
});
