import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { EventLoopWatchdog } from './watchdog.js';

function started() {
  const clock = new FakeClock();
  const dog = new EventLoopWatchdog({ clock });
  dog.start();
  return { clock, dog };
}

describe('EventLoopWatchdog', () => {
  it('is healthy while its heartbeat fires on time, however long that goes on', () => {
    const { clock, dog } = started();
    clock.advance(10 * 60_000);
    expect(dog.check()).toBeUndefined();
  });

  it('a stall of 10 s or more turns it red for the next 20 s, then green again', () => {
    const { clock, dog } = started();
    clock.advance(500);
    clock.block(12_000); // the loop is blocked: the beat due at 1 s cannot fire
    clock.advance(0); // the loop runs again: the beat fires 11.5 s late
    expect(dog.check()?.message).toBe('event loop was blocked for 11500 ms, 0 s ago');
    clock.advance(19_000);
    expect(dog.check()?.message).toBe('event loop was blocked for 11500 ms, 19 s ago');
    clock.advance(1_000);
    expect(dog.check()).toBeUndefined();
  });

  it('a check that gets to run while the beat is overdue by 10 s reports the block itself', () => {
    const { clock, dog } = started();
    clock.block(11_000);
    expect(dog.check()?.message).toBe('event loop blocked: heartbeat 10000 ms late');
  });

  it('shorter stalls (a big relist, a GC pause) are not a reason to restart', () => {
    const { clock, dog } = started();
    for (let i = 0; i < 10; i++) {
      clock.block(8_000);
      clock.advance(1_000);
    }
    expect(dog.check()).toBeUndefined();
  });

  it('stop cancels the heartbeat', () => {
    const { clock, dog } = started();
    expect(clock.pendingTimers()).toBe(1);
    dog.stop();
    expect(clock.pendingTimers()).toBe(0);
    clock.block(60_000);
    expect(dog.check()).toBeUndefined();
  });
});
