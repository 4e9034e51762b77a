/**
 * Client-side throttling: a token bucket of `burst` tokens refilled at `qps` per second, as
 * client-go's flowcontrol.NewTokenBucketRateLimiter. Built on bottleneck's reservoir.
 *
 * Bottleneck adds `reservoirIncreaseAmount` at most once per heartbeat, whatever the time
 * elapsed, so the heartbeat and the increase interval are set together (see bucketSettings)
 * and the refill rate comes out as amount / interval = qps.
 */
import Bottleneck from 'bottleneck';

/** client-go / kube-controller-manager defaults (--kube-api-qps, --kube-api-burst). */
export const defaultQPS = 20;
export const defaultBurst = 30;

/** Refill ticks no shorter than this: finer timers cost CPU for no smoothness anyone sees. */
const minTickMs = 50;

export interface BucketSettings {
  /** Tokens available at once (the burst). */
  reservoir: number;
  reservoirIncreaseMaximum: number;
  reservoirIncreaseAmount: number;
  /** Bottleneck refills when at least this long has passed since the last refill. */
  reservoirIncreaseInterval: number;
  /** How often bottleneck's timer checks the reservoir. */
  heartbeatInterval: number;
}

/**
 * Bottleneck settings for a token bucket: `amount` whole tokens every `interval` ms with
 * amount/interval = qps. The increase interval is 1 ms shorter than the heartbeat so that a
 * timer firing a hair early still refills (a skipped refill would lower the rate).
 */
export function bucketSettings(qps: number, burst: number): BucketSettings {
  if (!(qps > 0)) throw new Error(`qps must be positive, got ${qps}`);
  const size = Math.max(1, Math.floor(burst));
  const amount = Math.max(1, Math.round((qps * minTickMs) / 1000));
  const interval = Math.max(1, Math.round((amount * 1000) / qps));
  return {
    reservoir: size,
    reservoirIncreaseMaximum: size,
    reservoirIncreaseAmount: amount,
    reservoirIncreaseInterval: Math.max(1, interval - 1),
    heartbeatInterval: interval,
  };
}

export interface Throttle {
  /** Resolves when a token is available; returns how long the caller waited, in ms. */
  acquire(): Promise<number>;
  /** Stop the refill timer. */
  close(): Promise<void>;
}

/** No throttling at all (qps <= 0), for tests and for callers that throttle elsewhere. */
export const unthrottled: Throttle = {
  acquire: async () => 0,
  close: async () => {},
};

export function newThrottle(qps: number = defaultQPS, burst: number = defaultBurst): Throttle {
  if (!(qps > 0)) return unthrottled;
  const limiter = new Bottleneck({ ...bucketSettings(qps, burst), maxConcurrent: null, minTime: 0 });
  const take = () => Promise.resolve();
  return {
    async acquire() {
      const start = performance.now();
      await limiter.schedule(take);
      return performance.now() - start;
    },
    async close() {
      // Callers still waiting get a rejection instead of a token.
      await limiter.stop({ dropWaitingJobs: true });
    },
  };
}
