import { describe, expect, it } from '@jest/globals';
import { createLogger, defaultLogFormat } from './index.js';

function capture(verbosity: number, format: 'json' | 'text' = 'json') {
  const lines: string[] = [];
  const logger = createLogger({ verbosity, format, write: (l) => lines.push(l) });
  return { logger, lines };
}

describe('klog-style verbosity', () => {
  it('prints v(n) info lines only at -v n and up; error and warn always', () => {
    const { logger, lines } = capture(2);
    logger.info('zero');
    logger.v(2).info('two', { a: 1 });
    logger.v(3).info('three');
    logger.debug('debug');
    logger.v(5).error('error at any level');
    logger.v(5).warn('warn at any level');
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'info', message: 'zero' }),
      expect.objectContaining({ level: 'info', message: 'two', v: 2, a: 1 }),
      expect.objectContaining({ level: 'error', message: 'error at any level' }),
      expect.objectContaining({ level: 'warn', message: 'warn at any level' }),
    ]);
  });

  it('debug is v(4), and children keep both verbosity and fields', () => {
    const { logger, lines } = capture(4);
    const child = logger.child({ controller: 'c' });
    child.debug('d');
    child.v(4).info('i');
    child.v(5).info('not printed');
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'debug', message: 'd', v: 4, controller: 'c' }),
      expect.objectContaining({ level: 'debug', message: 'i', v: 4, controller: 'c' }),
    ]);
  });

  it('text on a terminal, JSON elsewhere, unless a format is asked for', () => {
    expect(defaultLogFormat(true)).toBe('text');
    expect(defaultLogFormat(false)).toBe('json');
    expect(defaultLogFormat(undefined)).toBe('json');
    const { logger, lines } = capture(0, 'text');
    logger.info('hello', { x: 1 });
    expect(lines[0]).toMatch(/^\S+ INFO hello \{"x":1\}$/);
  });
});

describe('records', () => {
  it('JSON keys sorted, child fields included; an Error field prints its message, a cycle does not throw', () => {
    const { logger, lines } = capture(0);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.child({ controller: 'c' }).info('failed', { err: new Error('boom'), big: 10n, cyclic });
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(rec)).toEqual(['big', 'controller', 'cyclic', 'err', 'level', 'message', 'timestamp']);
    expect(rec).toMatchObject({ err: 'boom', big: '10', cyclic: { name: 'loop', self: '[Circular]' } });
    expect(rec.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('text: timestamp, level, message, then the fields as JSON', () => {
    const { logger, lines } = capture(0, 'text');
    logger.child({ c: 1 }).warn('careful', { err: new Error('why') });
    logger.error('plain');
    expect(lines[0]).toMatch(/^\S+ WARN careful \{"c":1,"err":"why"\}$/);
    expect(lines[1]).toMatch(/^\S+ ERROR plain$/);
  });
});
