/**
 * Retry pacing for the reflector. Defaults are client-go's reflector backoff: 800 ms
 * doubling to 30 s, reset once the watch has been healthy for 2 minutes, so a flapping
 * apiserver never sees a restart storm and a single hiccup after a long calm costs 800 ms.
 */
import type { Clock } from '../clock/index.js';

export interface BackoffOptions {
  initialMs?: number; // 800 ms, client-go reflector
  maxMs?: number; // 30 s, client-go reflector
  factor?: number; // 2
  /** Extra random delay as a fraction of the step: delay is in [step, step * (1 + jitter)]. Default 0.1. */
  jitter?: number;
  /** A failure more than this long after the previous one starts again from `initialMs`. Default 2 min. */
  resetAfterMs?: number;
  /** Uniform random in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly resetAfterMs: number;
  private readonly random: () => number;
  private step: number;
  private lastFailureAt: number | undefined;

  constructor(
    private readonly clock: Clock,
    opts: BackoffOptions = {},
  ) {
    this.initialMs = opts.initialMs ?? 800;
    this.maxMs = opts.maxMs ?? 30_000;
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0.1;
    this.resetAfterMs = opts.resetAfterMs ?? 120_000;
    this.random = opts.random ?? Math.random;
    this.step = this.initialMs;
  }

  /** Record a failure now and return how long to wait before the next attempt. */
  next(): number {
    const now = this.clock.now();
    if (this.lastFailureAt !== undefined && now - this.lastFailureAt > this.resetAfterMs)
      this.step = this.initialMs;
    this.lastFailureAt = now;
    const base = this.step;
    this.step = Math.min(this.maxMs, this.step * this.factor);
    return base + base * this.jitter * this.random();
  }

  /** Forget past failures (e.g. after a clean sync). */
  reset(): void {
    this.step = this.initialMs;
    this.lastFailureAt = undefined;
  }
}
