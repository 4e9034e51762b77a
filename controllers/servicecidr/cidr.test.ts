import { describe, expect, it } from '@jest/globals';
import {
  familyOfCIDR,
  lastAddress,
  parseAddress,
  parsePrefix,
  prefixContainsAddress,
  prefixContainsPrefix,
  prefixesOverlap,
  type Prefix,
} from './cidr.js';

function prefix(s: string): Prefix {
  const p = parsePrefix(s);
  if (!p) throw new Error(`test prefix ${s} does not parse`);
  return p;
}

describe('parseAddress', () => {
  it.each([
    ['192.168.0.1', 'IPv4', 0xc0a80001n],
    ['0.0.0.0', 'IPv4', 0n],
    ['255.255.255.255', 'IPv4', 0xffffffffn],
    ['2001:db2::1', 'IPv6', 0x20010db2000000000000000000000001n],
    ['2001:0db2::ffff:ffff:ffff:ffff', 'IPv6', 0x20010db200000000ffffffffffffffffn],
    ['::', 'IPv6', 0n],
    ['::ffff:10.0.0.1', 'IPv6', 0xffff0a000001n],
    // Go's netip reads the deprecated IPv4-compatible form literally; ipaddr.js alone would map it.
    ['::1.2.3.4', 'IPv6', 0x01020304n],
    ['FD00::A', 'IPv6', 0xfd00000000000000000000000000000an],
  ])('%s parses as %s', (text, family, value) => {
    expect(parseAddress(text)).toEqual({ family, value });
  });

  it.each([
    [''],
    ['not-an-ip'],
    ['10'], // ipaddr.js would accept a 32-bit long value
    ['10.0.0'],
    ['010.0.0.1'], // leading zero (octal in ipaddr.js, rejected by Go)
    ['0x0a.0.0.1'],
    ['256.0.0.1'],
    ['10.0.0.1/32'],
    ['fe80::1%eth0'], // zones never belong to a Service IP
    ['2001:db2::12345'],
    ['::ffff:010.0.0.1'],
    ['1:2:3:4:5:6:7:8:9'],
    ['192.168.0.1 '],
  ])('%j does not parse', (text) => {
    expect(parseAddress(text)).toBeUndefined();
  });
});

describe('parsePrefix', () => {
  it.each([
    ['10.0.0.0/24', { family: 'IPv4', network: 0x0a000000n, bits: 24 }],
    ['10.0.0.7/29', { family: 'IPv4', network: 0x0a000000n, bits: 29 }], // masked
    ['0.0.0.0/0', { family: 'IPv4', network: 0n, bits: 0 }],
    ['10.1.2.3/32', { family: 'IPv4', network: 0x0a010203n, bits: 32 }],
    ['2001:db2::/64', { family: 'IPv6', network: 0x20010db2000000000000000000000000n, bits: 64 }],
    ['::/0', { family: 'IPv6', network: 0n, bits: 0 }],
  ])('%s', (text, want) => {
    expect(parsePrefix(text)).toEqual(want);
  });

  it.each([
    ['10.0.0.0'],
    ['10.0.0.0/33'],
    ['2001:db2::/129'],
    ['10.0.0.0/024'],
    ['10.0.0.0/'],
    ['/24'],
    ['garbage/8'],
    ['10.0.0.0/-1'],
  ])('%j does not parse', (text) => {
    expect(parsePrefix(text)).toBeUndefined();
  });

  it('reports the family of a CIDR string', () => {
    expect(familyOfCIDR('10.0.0.0/8')).toBe('IPv4');
    expect(familyOfCIDR('fd00::/108')).toBe('IPv6');
    expect(familyOfCIDR('nope')).toBeUndefined();
  });

  it('computes the last address (broadcast / all ones)', () => {
    expect(lastAddress(prefix('192.168.0.0/24'))).toBe(0xc0a800ffn);
    expect(lastAddress(prefix('2001:db2::/64'))).toBe(0x20010db200000000ffffffffffffffffn);
  });
});

describe('prefixContainsAddress', () => {
  it.each([
    ['192.168.0.0/24', '192.168.0.1', true],
    ['192.168.0.0/24', '192.168.0.254', true],
    ['192.168.0.0/24', '192.168.0.0', false], // network address
    ['192.168.0.0/24', '192.168.0.255', false], // IPv4 broadcast
    ['192.168.0.0/26', '192.168.0.63', false], // broadcast of the /26
    ['192.168.0.0/24', '192.168.0.63', true], // ...but an ordinary IP of the /24
    ['192.168.0.0/24', '192.168.1.1', false],
    ['10.0.0.0/31', '10.0.0.0', false],
    ['10.0.0.0/31', '10.0.0.1', false],
    ['10.0.0.1/32', '10.0.0.1', false],
    ['0.0.0.0/0', '8.8.8.8', true],
    ['2001:db2::/64', '2001:db2::1', true],
    ['2001:db2::/64', '2001:db2::', false], // IPv6 network address
    ['2001:db2::/64', '2001:0db2::ffff:ffff:ffff:ffff', true], // all ones IS allocatable in IPv6
    ['2001:db2::/64', '2001:db2:0:1::1', false],
    ['2001:db2::/96', '2001:db2::1', true],
    ['192.168.0.0/24', '::ffff:192.168.0.1', false], // IPv4-mapped IPv6 is not IPv4
    ['::ffff:0:0/96', '192.168.0.1', false],
    ['192.168.0.0/16', '2001:db2::1', false],
  ])('%s contains %s: %s', (p, a, want) => {
    const addr = parseAddress(a);
    expect(addr).toBeDefined();
    expect(prefixContainsAddress(prefix(p), addr!)).toBe(want);
  });
});

describe('prefixesOverlap / prefixContainsPrefix', () => {
  it.each([
    // a, b, overlap, a contains b
    ['10.0.0.0/16', '10.0.0.0/24', true, true],
    ['10.0.0.0/24', '10.0.0.0/16', true, false],
    ['10.0.0.0/24', '10.0.0.0/24', true, true],
    ['10.0.0.0/24', '10.0.1.0/24', false, false],
    ['192.168.0.0/24', '192.168.255.0/26', false, false],
    ['192.168.0.0/16', '192.168.255.0/26', true, true],
    ['0.0.0.0/0', '1.2.3.4/32', true, true],
    ['2001:db2::/48', '2001:db2::/64', true, true],
    ['2001:db2::/64', '2001:db2:a:b::/64', false, false],
    ['2001:db2::/64', '2001:db2::/96', true, true],
    ['10.0.0.0/8', '::/0', false, false], // families never overlap
  ])('%s vs %s: overlap %s, contains %s', (a, b, overlap, contains) => {
    expect(prefixesOverlap(prefix(a), prefix(b))).toBe(overlap);
    expect(prefixesOverlap(prefix(b), prefix(a))).toBe(overlap);
    expect(prefixContainsPrefix(prefix(a), prefix(b))).toBe(contains);
  });
});
