import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newQueue } from './queue.js';

describe('Queue', () => {
  it('hands keys out in FIFO order and dedups keys already queued', async () => {
    const q = newQueue<string>({ name: 't', clock: new FakeClock() });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
  });
});
