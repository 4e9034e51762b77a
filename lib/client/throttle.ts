/**
 * Client-side throttling: a token bucket of `burst` tokens refilled at `qps` per second, with
 * the semantics of client-go's flowcontrol.NewTokenBucketRateLimiter (golang.org/x/time/rate
 * underneath): the bucket starts full; a caller that finds it empty reserves the next token
 * and sleeps until that token is due, so waiters are served in the order they asked (FIFO) and
 * the long-run rate is exactly qps; a caller that gives up (its signal aborts) hands its
 * reservation back.
 *
 * The bucket is computed lazily from the monotonic clock on each acquire: no refill timer, no
 * queue of jobs. Bottleneck did the same job with a heartbeat timer and a job scheduler per
 * request and cost ~10 % CPU at raised limits.
 */
import { setMaxListeners } from 'node:events';
import { RealClock, type Clock } from '../clock/index.js';

/** client-go / kube-controller-manager defaults (--kube-api-qps, --kube-api-burst). */
export const defaultQPS = 20;
export const defaultBurst = 30;

export interface Throttle {
  /**
   * Resolves when a token is available; returns how long the caller waited, in ms. Rejects
   * with the signal's reason if `signal` aborts first (the token goes back), and with an
   * error once the throttle is closed.
   */
  acquire(signal?: AbortSignal): Promise<number>;
  /** Reject every caller still waiting and any later one. */
  close(): Promise<void>;
}

/** No throttling at all (qps <= 0), for tests and for callers that throttle elsewhere. */
export const unthrottled: Throttle = {
  acquire: async () => 0,
  close: async () => {},
};

export function newThrottle(
  qps: number = defaultQPS,
  burst: number = defaultBurst,
  clock: Clock = new RealClock(),
): Throttle {
  if (!(qps > 0)) return unthrottled;
  return new TokenBucket(qps, Math.max(1, Math.floor(burst)), clock);
}

class TokenBucket implements Throttle {
  /** Tokens in the bucket at `last`; negative while callers hold reservations for future tokens. */
  private tokens: number;
  private last: number;
  private readonly closed = new AbortController();

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.monotonicNow();
    // Every caller waiting without a signal of its own listens on this one; that is no leak.
    setMaxListeners(0, this.closed.signal);
  }

  async acquire(signal?: AbortSignal): Promise<number> {
    if (this.closed.signal.aborted) throw this.closed.signal.reason;
    signal?.throwIfAborted();
    const now = this.clock.monotonicNow();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    // The reserved token is due when the debt is paid off; later callers owe more and wait longer.
    const waitMs = (-this.tokens * 1000) / this.qps;
    const stop = signal ? AbortSignal.any([signal, this.closed.signal]) : this.closed.signal;
    try {
      await this.clock.sleep(waitMs, stop);
    } catch (err) {
      // As rate.Reservation.Cancel: the token not used goes back to whoever asks next.
      this.tokens += 1;
      throw err;
    }
    return this.clock.monotonicNow() - now;
  }

  async close(): Promise<void> {
    this.closed.abort(new Error('throttle closed'));
  }
}
