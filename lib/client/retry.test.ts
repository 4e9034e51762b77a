import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newConflict, newNotFound } from './errors.js';
import { retryOnConflict } from './retry.js';
import { Resources } from './types.js';

/** Let pending promise callbacks run, then fire due timers; repeat until `p` settles. */
async function drive<T>(
  clock: FakeClock,
  p: Promise<T>,
  stepMs: number,
): Promise<{ value?: T; error?: unknown; slept: number }> {
  let settled = false;
  const out: { value?: T; error?: unknown; slept: number } = { slept: 0 };
  p.then(
    (v) => ((out.value = v), (settled = true)),
    (e: unknown) => ((out.error = e), (settled = true)),
  );
  for (let i = 0; i < 100 && !settled; i++) {
    for (let j = 0; j < 10; j++) await Promise.resolve();
    if (settled) break;
    if (clock.pendingTimers() > 0) {
      clock.advance(stepMs);
      out.slept += stepMs;
    }
  }
  return out;
}

describe('retryOnConflict', () => {
  it('retries conflicts up to 5 runs (client-go DefaultRetry) with jittered 10 ms pauses', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const conflict = newConflict(Resources.leases, 'l');
    const res = await drive(
      clock,
      retryOnConflict(
        async () => {
          runs++;
          throw conflict;
        },
        { clock, random: () => 0.5 },
      ),
      1,
    );
    expect(res.error).toBe(conflict);
    expect(runs).toBe(5);
    expect(res.slept).toBe(44); // 4 pauses of ceil(10 + 10*0.1*0.5) = 11 fake ms each
  });

  it('returns as soon as fn succeeds', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const res = await drive(
      clock,
      retryOnConflict(
        async () => {
          runs++;
          if (runs < 3) throw newConflict(Resources.leases, 'l');
          return 'done';
        },
        { clock },
      ),
      20,
    );
    expect(res.value).toBe('done');
    expect(runs).toBe(3);
  });

  it('does not retry other errors', async () => {
    let runs = 0;
    const nf = newNotFound(Resources.leases, 'l');
    await expect(
      retryOnConflict(
        async () => {
          runs++;
          throw nf;
        },
        { clock: new FakeClock() },
      ),
    ).rejects.toBe(nf);
    expect(runs).toBe(1);
  });
});
