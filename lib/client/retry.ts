/**
 * Retrying a read-modify-write when someone else wrote first, as client-go's
 * retry.RetryOnConflict: run `fn` again (it must re-read the object) after a short,
 * jittered pause, a bounded number of times.
 */
import { RealClock, type Clock } from '../clock/index.js';
import { isConflict } from './errors.js';

export interface Backoff {
  /** How many times fn runs at most. */
  steps: number;
  /** First pause, in ms. */
  durationMs: number;
  /** Each pause is the previous one times this. */
  factor: number;
  /** Up to this fraction of the pause is added at random. */
  jitter: number;
  /** Pauses never exceed this, in ms (0: no cap). */
  capMs?: number;
}

/** client-go retry.DefaultRetry: 5 steps, 10 ms, factor 1, jitter 0.1. */
export const defaultRetry: Backoff = { steps: 5, durationMs: 10, factor: 1, jitter: 0.1 };
/** client-go retry.DefaultBackoff: for conflicts that are expected to persist a little (4 steps, 10 ms, x5). */
export const defaultBackoff: Backoff = { steps: 4, durationMs: 10, factor: 5, jitter: 0.1 };

export interface RetryOptions {
  backoff?: Partial<Backoff>;
  clock?: Clock;
  /** Random source in [0, 1), for tests. */
  random?: () => number;
  signal?: AbortSignal;
}

/** Run fn; while it fails with an error `retriable` accepts and steps remain, pause and run it again. */
export async function retryOnError<R>(
  retriable: (err: unknown) => boolean,
  fn: () => Promise<R>,
  opts: RetryOptions = {},
): Promise<R> {
  const b = { ...defaultRetry, ...opts.backoff };
  const clock = opts.clock ?? new RealClock();
  const random = opts.random ?? Math.random;
  let pause = b.durationMs;
  for (let step = 1; ; step++) {
    try {
      return await fn();
    } catch (err) {
      if (step >= b.steps || !retriable(err)) throw err;
    }
    const wait = pause + (b.jitter > 0 ? pause * b.jitter * random() : 0);
    await clock.sleep(wait, opts.signal);
    pause *= b.factor;
    if (b.capMs && pause > b.capMs) pause = b.capMs;
  }
}

/** retryOnError for Conflict (409 with reason Conflict, not AlreadyExists). */
export function retryOnConflict<R>(fn: () => Promise<R>, opts: RetryOptions = {}): Promise<R> {
  return retryOnError(isConflict, fn, opts);
}
