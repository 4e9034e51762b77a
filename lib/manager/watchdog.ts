/**
 * Liveness of the event loop, for /healthz. A heartbeat timer fires every `intervalMs`; how
 * late it fires is how long the loop was blocked (a synchronous pass over a huge list, GC
 * thrashing near the heap limit). A beat later than `stallMs` marks the process unhealthy
 * for `holdMs` afterwards, and so does a beat overdue by that much when a check runs.
 *
 * Why these defaults: a 10 s stall is kube's lease renew deadline, so a leader stalled that
 * long has already lost its Lease; holding red for 20 s is two probes at the Deployment's
 * 10 s period, one short of its failureThreshold of 3, so one stall alone does not get the
 * pod restarted, while stalls that keep coming (or a loop that never comes back, whose
 * probes time out) do. A busy loop that still answers within milliseconds stays healthy, and
 * so does a process whose apiserver is away: that is readiness' and the elector's business.
 */
import type { Clock, TimerHandle } from '../clock/index.js';
import type { HealthCheck } from './healthz.js';

export interface EventLoopWatchdogOptions {
  clock: Clock;
  /** Heartbeat period. Default 1 s. */
  intervalMs?: number;
  /** A beat this late is a stall. Default 10 s. */
  stallMs?: number;
  /** How long after a stall the check stays red. Default 20 s. */
  holdMs?: number;
}

export class EventLoopWatchdog implements HealthCheck {
  readonly name = 'event-loop';
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly stallMs: number;
  private readonly holdMs: number;
  private timer?: TimerHandle;
  /** When the pending beat is due (monotonic). */
  private due = 0;
  private lastStall?: { at: number; lateMs: number };

  constructor(opts: EventLoopWatchdogOptions) {
    this.clock = opts.clock;
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.stallMs = opts.stallMs ?? 10_000;
    this.holdMs = opts.holdMs ?? 20_000;
  }

  start(): void {
    if (this.timer) return;
    this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  check(): Error | undefined {
    const now = this.clock.monotonicNow();
    const overdue = this.timer ? now - this.due : 0;
    if (overdue >= this.stallMs)
      return new Error(`event loop blocked: heartbeat ${Math.round(overdue)} ms late`);
    const stall = this.lastStall;
    if (stall && now - stall.at < this.holdMs)
      return new Error(
        `event loop was blocked for ${Math.round(stall.lateMs)} ms, ${Math.round((now - stall.at) / 1000)} s ago`,
      );
    return undefined;
  }

  private arm(): void {
    this.due = this.clock.monotonicNow() + this.intervalMs;
    this.timer = this.clock.setTimer(this.intervalMs, () => {
      const now = this.clock.monotonicNow();
      const late = now - this.due;
      if (late >= this.stallMs) this.lastStall = { at: now, lateMs: late };
      this.arm();
    });
  }
}
