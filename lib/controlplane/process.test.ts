import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { logTail, readLogRange } from './process.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('component logs', () => {
  it('logTail reads only the end of a log, however large', () => {
    const file = join(dir, 'big.log');
    writeFileSync(file, '');
    const chunk = 'x'.repeat(1023) + '\n';
    for (let i = 0; i < 1024; i++) appendFileSync(file, chunk.repeat(8)); // 8 MiB
    appendFileSync(file, 'second to last\nlast\n');
    expect(logTail(file, 2)).toBe('second to last\nlast');
    expect(logTail(join(dir, 'missing.log'))).toBe('(no log)');
  });

  it('readLogRange returns what was written after an offset, bounded', () => {
    const file = join(dir, 'range.log');
    writeFileSync(file, 'old line\n');
    const offset = 9;
    appendFileSync(file, 'listen tcp: address already in use\n');
    expect(readLogRange(file, offset)).toBe('listen tcp: address already in use\n');
    expect(readLogRange(file, offset, 6)).toBe('listen');
    expect(readLogRange(file, 10_000)).toBe('');
  });
});
