import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { nopLogger } from '../log/index.js';
import { fullCollection, MemorySettler } from './settle.js';

function settler(busy: number[], opts: { giveUpAfterMs?: number } = {}) {
  const clock = new FakeClock();
  const samples = [...busy];
  let collections = 0;
  const s = new MemorySettler({
    clock,
    logger: nopLogger(),
    utilization: () => samples.shift() ?? 0,
    collect: () => {
      collections++;
      return true;
    },
    rss: () => 80 * 2 ** 20,
    ...opts,
  });
  return { clock, s, collections: () => collections };
}

describe('MemorySettler', () => {
  it('collects once, at the end of the first quiet interval, and never again', () => {
    // The first sample opens the first interval; then busy, busy, quiet.
    const { clock, s, collections } = settler([0, 0.9, 0.3, 0.01]);
    s.start();
    clock.advance(5_000);
    clock.advance(5_000);
    expect(collections()).toBe(0);
    clock.advance(5_000);
    expect(collections()).toBe(1);
    expect(s.settled).toBe(true);
    clock.advance(60_000);
    s.start();
    clock.advance(60_000);
    expect(collections()).toBe(1);
  });

  it('leaves a process that never goes quiet alone after giveUpAfterMs', () => {
    const { clock, s, collections } = settler([0, ...Array<number>(100).fill(0.5)], {
      giveUpAfterMs: 20_000,
    });
    s.start();
    clock.advance(20_000);
    expect(collections()).toBe(0);
    clock.advance(5 * 60_000);
    expect(collections()).toBe(0);
    expect(s.settled).toBe(false);
  });

  it('does nothing once stopped', () => {
    const { clock, s, collections } = settler([0, 0]);
    s.start();
    s.stop();
    clock.advance(60_000);
    expect(collections()).toBe(0);
  });
});

describe('fullCollection', () => {
  it("frees what nothing references any more, through V8's gc without --expose-gc", async () => {
    let kept: object | undefined = { payload: 'x'.repeat(1024) };
    const ref = new WeakRef(kept);
    kept = undefined;
    // A WeakRef holds its target until the end of the job that created it.
    await new Promise((r) => setImmediate(r));
    expect(fullCollection()).toBe(true);
    expect(ref.deref()).toBeUndefined();
    expect(kept).toBeUndefined();
  });
});
