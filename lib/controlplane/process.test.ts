import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { isRunning, logTail, readLogRange } from './process.js';

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

// A process whose leader thread has exited while another thread runs on: what a SIGKILLed Go
// binary looks like for a moment (its listening sockets still open). python3's pthread_exit
// is the simplest way to make one; skipped where there is no python3.
const python = spawnSync('python3', ['--version']).status === 0;
(python ? describe : describe.skip)('isRunning', () => {
  it('counts a zombie leader whose other threads still run as running, and not once they are gone', async () => {
    const child = spawn(
      'python3',
      [
        '-c',
        'import ctypes, threading, time\n' +
          'threading.Thread(target=time.sleep, args=(1.5,)).start()\n' +
          'ctypes.CDLL(None).pthread_exit(None)\n',
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => child.once('exit', r));
    const pid = child.pid!;
    const stateOf = () => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    };
    const deadline = Date.now() + 5_000;
    while (stateOf() !== 'Z' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stateOf()).toBe('Z');
    expect(isRunning(pid, 'python3')).toBe(true);
    await exited;
    expect(isRunning(pid, 'python3')).toBe(false);
  });
});
