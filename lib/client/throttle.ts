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
    const stop = signal ? linkAbort(signal, this.closed.signal) : undefined;
    try {
      await this.clock.sleep(waitMs, stop?.signal ?? this.closed.signal);
    } catch (err) {
      // As rate.Reservation.Cancel: the token not used goes back to whoever asks next.
      this.tokens += 1;
      throw err;
    } finally {
      stop?.unlink();
    }
    return this.clock.monotonicNow() - now;
  }

  async close(): Promise<void> {
    this.closed.abort(new Error('throttle closed'));
  }
}

/** The waits following one source signal, and the one abort listener they share on it. */
interface Followers {
  waits: Set<() => void>;
  onAbort: () => void;
}

const followers = new WeakMap<AbortSignal, Followers>();

/**
 * Run `onAbort` when `source` aborts, until the returned function is called. One listener on
 * `source` however many wait, and none once the last of them is done: a listener left behind
 * keeps a composite source (AbortSignal.any) alive for as long as the signals it follows.
 */
function follow(source: AbortSignal, onAbort: () => void): () => void {
  const entry = followers.get(source) ?? listenOn(source);
  entry.waits.add(onAbort);
  return () => {
    entry.waits.delete(onAbort);
    if (entry.waits.size > 0 || followers.get(source) !== entry) return;
    followers.delete(source);
    source.removeEventListener('abort', entry.onAbort);
  };
}

/** Separate from follow so that the listener's closure does not hold the first wait's onAbort. */
function listenOn(source: AbortSignal): Followers {
  const waits = new Set<() => void>();
  const entry: Followers = {
    waits,
    onAbort: () => {
      followers.delete(source);
      for (const f of [...waits]) f();
    },
  };
  followers.set(source, entry);
  source.addEventListener('abort', entry.onAbort, { once: true });
  return entry;
}

/**
 * A signal that aborts when `a` or `b` does (with that one's reason), unlinked by hand once the
 * wait is over. Not AbortSignal.any: a signal it composes that was given a listener registers
 * itself in two FinalizationRegistries of each source, and with a long-lived source (the
 * controller's cancel signal, the closed signal here) those entries, about 1 KB a wait, outlive
 * the composed signal until a major GC, its cleanup task and the next major GC have run. Under
 * steady throttling (every request of a busy controller waits) that was most of the heap growth
 * of the soak between two major GCs (docs/reliability.md, "Soak"). Nor a listener per wait on
 * the sources: many concurrent waits on one caller signal would trip Node's listener warning.
 */
function linkAbort(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; unlink(): void } {
  const link = new AbortController();
  if (a.aborted || b.aborted) {
    link.abort(a.aborted ? a.reason : b.reason);
    return { signal: link.signal, unlink: () => {} };
  }
  const offA = follow(a, () => link.abort(a.reason));
  const offB = follow(b, () => link.abort(b.reason));
  return {
    signal: link.signal,
    unlink() {
      offA();
      offB();
    },
  };
}
