import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newDelayingQueue } from './delaying.js';
import type { DelayedQueue } from './delaying.js';

function setup(): { clock: FakeClock; q: DelayedQueue<string> } {
  const clock = new FakeClock();
  return { clock, q: newDelayingQueue<string>({ name: 'delayed', clock }) };
}

/** Everything queued right now, in order, each marked done. */
function drain(q: DelayedQueue<string>): string[] {
  const out: string[] = [];
  for (let k = q.tryGet(); k !== undefined; k = q.tryGet()) {
    out.push(k);
    q.done(k);
  }
  return out;
}

describe('DelayedQueue.addAfter', () => {
  it('adds the key once its delay has passed on the clock, not before', () => {
    const { clock, q } = setup();
    q.addAfter('a', 100);
    expect(q.len()).toBe(0);
    expect(q.waitingCount()).toBe(1);
    clock.advance(99);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    expect(q.waitingCount()).toBe(0);
    expect(drain(q)).toEqual(['a']);
  });

  it('measures delays on the monotonic clock: a wall-clock step back does not hold a key', () => {
    const { clock, q } = setup();
    q.addAfter('a', 10_000);
    clock.stepWall(-3_600_000);
    clock.advance(10_000);
    expect(drain(q)).toEqual(['a']);
    q.addAfter('b', 10_000);
    clock.stepWall(3_600_000);
    clock.advance(9_999);
    expect(q.len()).toBe(0);
  });

  it('adds immediately when the delay is zero or negative', () => {
    const { clock, q } = setup();
    q.addAfter('zero', 0);
    q.addAfter('negative', -5);
    expect(drain(q)).toEqual(['zero', 'negative']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('releases keys in ready-time order, ties in call order', () => {
    const { clock, q } = setup();
    q.addAfter('late', 300);
    q.addAfter('early', 100);
    q.addAfter('tie-1', 200);
    q.addAfter('tie-2', 200);
    clock.advance(1000);
    expect(drain(q)).toEqual(['early', 'tie-1', 'tie-2', 'late']);
  });

  it('a key already waiting takes the earlier of its ready times and is added once', () => {
    const { clock, q } = setup();
    q.addAfter('a', 100);
    q.addAfter('a', 50); // earlier: moves up
    q.addAfter('b', 100);
    q.addAfter('b', 500); // later: ignored
    expect(q.waitingCount()).toBe(2);
    clock.advance(50);
    expect(drain(q)).toEqual(['a']);
    clock.advance(50);
    expect(drain(q)).toEqual(['b']);
    clock.advance(1000);
    expect(drain(q)).toEqual([]);
  });

  it('keeps a single clock timer, re-armed for the earliest key', () => {
    const { clock, q } = setup();
    for (let i = 0; i < 50; i++) q.addAfter(`k${i}`, 1000 - i);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(951);
    expect(drain(q)).toEqual(['k49']);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(49);
    expect(drain(q)).toHaveLength(49);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a ready key already queued is not queued twice', () => {
    const { clock, q } = setup();
    q.add('a');
    q.addAfter('a', 10);
    clock.advance(10);
    expect(drain(q)).toEqual(['a']);
  });

  it('shutDown cancels the timer and drops waiting keys; addAfter afterwards is ignored', () => {
    const { clock, q } = setup();
    q.addAfter('a', 100);
    q.shutDown();
    expect(clock.pendingTimers()).toBe(0);
    q.addAfter('b', 10);
    clock.advance(1000);
    expect(q.len()).toBe(0);
    expect(q.waitingCount()).toBe(0);
  });
});
