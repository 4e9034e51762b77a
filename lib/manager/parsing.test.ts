import { describe, expect, it } from '@jest/globals';
import type { ControllerDefinition } from '../controller/types.js';
import { formatDuration, parseBindAddress, parseDuration, resolveControllers } from './index.js';

describe('parseDuration (Go syntax)', () => {
  it.each([
    ['15s', 15_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['2h45m', 9_900_000],
    ['0', 0],
    ['0s', 0],
    ['.5s', 500],
    ['1us', 0.001],
    ['1µs', 0.001],
    ['100ns', 0.0001],
    ['-2s', -2_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '15', 's', '1d', '1m 30s', '--1s', '1.2.3s', 'abc'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(`invalid duration "${text}"`);
  });

  it('formats like Go', () => {
    expect([15_000, 90_000, 500, 3_600_000, 5_400_500, 0].map(formatDuration)).toEqual([
      '15s',
      '1m30s',
      '500ms',
      '1h0m0s',
      '1h30m0.5s',
      '0s',
    ]);
  });
});

describe('parseBindAddress', () => {
  it.each([
    [':8080', { port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:8081', { host: '0.0.0.0', port: 8081 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
  ])('%s', (text, want) => {
    expect(parseBindAddress(text)).toEqual(want);
  });

  it('"0" disables the server', () => {
    expect(parseBindAddress('0')).toBeUndefined();
  });

  it.each(['8080', '::1:80', 'host:', 'host:99999', ':-1', 'a:b'])('rejects %j', (text) => {
    expect(() => parseBindAddress(text)).toThrow(`invalid bind address "${text}"`);
  });
});

describe('resolveControllers (--controllers)', () => {
  const def = (name: string, enabledByDefault = true): ControllerDefinition => ({
    name,
    enabledByDefault,
    flags: [],
    rbac: [],
    create: () => ({ run: async () => {} }),
  });
  const defs = [def('a'), def('b'), def('off', false)];
  const names = (list: string[]) => resolveControllers(defs, list).map((d) => d.name);

  it('`*` enables every controller enabled by default', () => {
    expect(names(['*'])).toEqual(['a', 'b']);
  });
  it('`foo` enables foo, also one off by default', () => {
    expect(names(['off'])).toEqual(['off']);
    expect(names(['*', 'off'])).toEqual(['a', 'b', 'off']);
  });
  it('`-foo` disables foo even with `*`', () => {
    expect(names(['*', '-a'])).toEqual(['b']);
    expect(names(['-a', '*'])).toEqual(['b']);
    expect(names(['-off', '*'])).toEqual(['a', 'b']);
  });
  it('an empty list enables nothing', () => {
    expect(names([''])).toEqual([]);
  });
  it('rejects unknown names with the list of known ones', () => {
    expect(() => names(['*', 'nope'])).toThrow('unknown controller "nope"; known controllers: a, b, off');
    expect(() => names(['-nope'])).toThrow('unknown controller "nope"');
  });
});
