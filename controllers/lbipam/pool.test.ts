import { describe, expect, it } from '@jest/globals';
import {
  canonicalIP,
  containsIP,
  firstOverlap,
  formatIP,
  lowestFree,
  parseEntry,
  parseIP,
  parsePoolAddresses,
  sizeOf,
} from './pool.js';

describe('IP text', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::', 'fd00::'],
  ])('%s is canonically %s', (text, want) => {
    expect(canonicalIP(text)).toBe(want);
  });

  it.each(['10.0.0.256', '010.0.0.1', 'fe80::1%eth0', '::ffff:10.0.0.1', 'nope', ''])(
    'refuses %s',
    (text) => {
      expect(parseIP(text)).toBeUndefined();
    },
  );
});

describe('pool entries', () => {
  it('a CIDR holds every address, network and broadcast included (a /30 gives 4)', () => {
    const r = parseEntry('192.168.10.0/30');
    expect(sizeOf([r], 'IPv4')).toBe(4n);
    expect(formatIP('IPv4', r.start)).toBe('192.168.10.0');
    expect(formatIP('IPv4', r.end)).toBe('192.168.10.3');
  });

  it('an A-B range is inclusive, IPv4 or IPv6', () => {
    expect(sizeOf([parseEntry('10.0.0.10-10.0.0.19')], 'IPv4')).toBe(10n);
    expect(sizeOf([parseEntry('fd00::1 - fd00::ff')], 'IPv6')).toBe(255n);
  });

  it('a /64 is sized and allocated from without enumerating it', () => {
    const r = parseEntry('fd00:1::/64');
    expect(sizeOf([r], 'IPv6')).toBe(2n ** 64n);
    const taken = new Set(['fd00:1::', 'fd00:1::1']);
    expect(lowestFree([r], 'IPv6', (ip) => taken.has(ip))).toBe('fd00:1::2');
  });

  it.each([
    ['10.0.0.0/33', /prefix length/],
    ['10.0.0.1/24', /host bits are set \(did you mean 10.0.0.0\/24\?\)/],
    ['10.0.0.9-10.0.0.1', /start is after its end/],
    ['10.0.0.1-fd00::1', /mixes IPv4 and IPv6/],
    ['10.0.0.x/24', /not an IP address/],
    ['10.0.0.1', /neither a CIDR/],
  ])('refuses %s', (entry, why) => {
    expect(() => parseEntry(entry)).toThrow(why);
  });
});

describe('pools', () => {
  it('reports bad entries and overlaps inside one pool, keeps the good ranges sorted', () => {
    const p = parsePoolAddresses([
      '10.0.1.0/24',
      'bad',
      '10.0.0.0/24',
      '10.0.0.128-10.0.0.130',
      'fd00::/120',
    ]);
    expect(p.errors).toEqual([
      '"bad": neither a CIDR (a.b.c.d/n) nor a range (A-B)',
      '"10.0.0.0/24" and "10.0.0.128-10.0.0.130" overlap',
    ]);
    expect(p.ranges.map((r) => r.source)).toEqual([
      '10.0.0.0/24',
      '10.0.0.128-10.0.0.130',
      '10.0.1.0/24',
      'fd00::/120',
    ]);
    expect(parsePoolAddresses([]).errors).toEqual(['spec.addresses is empty']);
  });

  it('finds an overlap between two pools, only within one family', () => {
    const a = parsePoolAddresses(['10.0.0.0/24', 'fd00::/64']).ranges;
    const b = parsePoolAddresses(['10.0.1.0/24', 'fd00::ff-fd00::1ff']).ranges;
    expect(firstOverlap(a, b)?.map((r) => r.source)).toEqual(['fd00::/64', 'fd00::ff-fd00::1ff']);
    expect(firstOverlap(a, parsePoolAddresses(['10.0.1.0/24']).ranges)).toBeUndefined();
  });

  it('lowest free walks ranges in order and skips taken addresses; undefined when exhausted', () => {
    const { ranges } = parsePoolAddresses(['10.0.0.4/31', '10.0.0.0/31']);
    const taken = new Set(['10.0.0.0']);
    expect(lowestFree(ranges, 'IPv4', (ip) => taken.has(ip))).toBe('10.0.0.1');
    expect(lowestFree(ranges, 'IPv6', () => false)).toBeUndefined();
    expect(lowestFree(ranges, 'IPv4', () => true)).toBeUndefined();
    expect(containsIP(ranges, 'IPv4', parseIP('10.0.0.5')!.value)).toBe(true);
    expect(containsIP(ranges, 'IPv4', parseIP('10.0.0.2')!.value)).toBe(false);
  });
});
