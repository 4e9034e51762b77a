import { describe, expect, it } from '@jest/globals';
import { FakeClock, MAX_TIMER_DELAY_MS, RealClock } from './index.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RealClock', () => {
  it('does not fire a timer longer than setTimeout can hold after 1 ms', async () => {
    const clock = new RealClock();
    let fired = false;
    const t = clock.setTimer(MAX_TIMER_DELAY_MS + 86_400_000, () => (fired = true));
    await wait(30);
    t.cancel();
    expect(fired).toBe(false);
  });

  it('a sleep of 25 days does not resolve at once', async () => {
    const clock = new RealClock();
    const stop = new AbortController();
    let resolved = false;
    const p = clock.sleep(25 * 86_400_000, stop.signal).then(
      () => (resolved = true),
      () => undefined,
    );
    await wait(30);
    expect(resolved).toBe(false);
    stop.abort();
    await p;
  });

  it('chains a delay longer than one timer and fires once, not early', async () => {
    const clock = new RealClock(20); // pretend setTimeout holds only 20 ms
    const start = performance.now();
    let firedAt = 0;
    let count = 0;
    await new Promise<void>((resolve) =>
      clock.setTimer(70, () => {
        count++;
        firedAt = performance.now();
        resolve();
      }),
    );
    await wait(30);
    expect(count).toBe(1);
    expect(firedAt - start).toBeGreaterThanOrEqual(69);
  });

  it('cancels a chained timer between links', async () => {
    const clock = new RealClock(10);
    let fired = false;
    const t = clock.setTimer(60, () => (fired = true));
    await wait(25);
    t.cancel();
    await wait(60);
    expect(fired).toBe(false);
  });

  it('monotonicNow moves forward', async () => {
    const clock = new RealClock();
    const a = clock.monotonicNow();
    await wait(5);
    expect(clock.monotonicNow()).toBeGreaterThan(a);
  });
});

describe('FakeClock', () => {
  it('advance moves wall and monotonic time together and fires due timers', () => {
    const clock = new FakeClock(1_000_000);
    const fired: number[] = [];
    clock.setTimer(100, () => fired.push(clock.monotonicNow()));
    clock.advance(150);
    expect(fired).toEqual([100]);
    expect(clock.now()).toBe(1_000_150);
    expect(clock.monotonicNow()).toBe(150);
  });

  it('stepWall moves only the wall clock and fires nothing', () => {
    const clock = new FakeClock(1_000_000);
    let fired = false;
    clock.setTimer(100, () => (fired = true));
    clock.stepWall(3_600_000);
    expect(fired).toBe(false);
    expect(clock.now()).toBe(4_600_000);
    expect(clock.monotonicNow()).toBe(0);
    clock.stepWall(-7_200_000);
    expect(clock.now()).toBe(-2_600_000);
  });
});
