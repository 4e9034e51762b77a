/**
 * Package clock: the only source of time for the machinery and controllers, so unit
 * tests can drive time by hand (FakeClock) instead of sleeping.
 *
 * Two readings: `now()` is wall time (what goes into objects, e.g. a Lease's renewTime)
 * and can jump when NTP steps the clock or a VM resumes; `monotonicNow()` only ever moves
 * forward at the rate time passes and is what every duration is measured with (lease
 * expiry, deadlines, backoffs, queue delays). Timers run on monotonic time.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall time: milliseconds since the epoch. Only for timestamps written into objects. */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin; use it for every duration. */
  monotonicNow(): number;
  /** Run `fn` after `ms` milliseconds (any length: delays beyond setTimeout's range are chained). */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** A promise resolved after `ms`, or rejected with the abort reason if `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The longest delay Node's setTimeout takes as given (2^31 - 1 ms, about 24.8 days); a longer
 * one is treated as 1 ms. RealClock arms at most this much at a time and re-arms for the rest.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  /** `maxTimerDelayMs` exists for tests of the chaining; leave the default otherwise. */
  constructor(private readonly maxTimerDelayMs = MAX_TIMER_DELAY_MS) {}

  now(): number {
    return Date.now();
  }

  monotonicNow(): number {
    return performance.now();
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.schedule(ms, fn, false);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        timer.cancel();
        reject(signal?.reason);
      };
      // Unlike setTimer's timers, a pending sleep keeps the process alive, as setTimeout does.
      const timer = this.schedule(
        ms,
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        true,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * setTimeout for any delay: arm at most maxTimerDelayMs at once, re-arm for the rest. libuv
   * keeps its loop time in whole milliseconds (floored), so any link, the last one too, can fire
   * up to 1 ms before performance.now() says it is due; when more than that 1 ms granularity is
   * still left, re-arm instead of firing.
   */
  private schedule(ms: number, fn: () => void, keepAlive: boolean): TimerHandle {
    const due = performance.now() + Math.max(0, ms);
    let t: NodeJS.Timeout | undefined;
    const arm = (left: number) => {
      const chunk = Math.min(left, this.maxTimerDelayMs);
      t = setTimeout(() => {
        const rest = due - performance.now();
        if (rest > 1) arm(rest);
        else fn();
      }, chunk);
      if (!keepAlive) t.unref();
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  }
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when a test calls `advance` or `set`. Both readings move together;
 * `stepWall` moves the wall clock alone (an NTP step), which fires no timer.
 */
export class FakeClock implements Clock {
  private current: number;
  private monotonic = 0;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start: number | Date = Date.parse('2026-01-01T00:00:00Z')) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  monotonicNow(): number {
    return this.monotonic;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: PendingTimer = {
      at: this.monotonic + Math.max(0, ms),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const handle = this.setTimer(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = () => {
        handle.cancel();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number of timers still waiting to fire. */
  pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    this.advanceTo(this.monotonic + Math.max(0, ms));
  }

  /** Move time forward until monotonicNow() is exactly `target`, firing due timers in order. */
  advanceTo(target: number): void {
    for (;;) {
      const due = this.timers
        .filter((t) => !t.cancelled && t.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      if (due.at > this.monotonic) {
        this.current += due.at - this.monotonic;
        this.monotonic = due.at;
      }
      due.cancelled = true;
      due.fn();
    }
    this.timers = this.timers.filter((t) => !t.cancelled);
    if (target > this.monotonic) {
      this.current += target - this.monotonic;
      this.monotonic = target;
    }
  }

  /** Move both clocks forward until the wall clock reads `time` (never backwards; see stepWall). */
  set(time: number): void {
    this.advance(Math.max(0, time - this.current)); // advance(0) still fires timers due now
  }

  /**
   * Time passes and nothing runs, as while the event loop is blocked: both clocks move by `ms`
   * and no timer fires. The next advance fires the overdue ones, late, at the time it is then.
   */
  block(ms: number): void {
    this.current += Math.max(0, ms);
    this.monotonic += Math.max(0, ms);
  }

  /** Step the wall clock alone by `ms` (either direction), as NTP or a VM resume does; no timer fires. */
  stepWall(ms: number): void {
    this.current += ms;
  }
}
