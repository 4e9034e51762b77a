import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { newQueue } from './queue.js';

function queue() {
  return newQueue<string>({ name: 'test', clock: new FakeClock() });
}

/** Lets pending promise callbacks and other ready tasks run (no time passes). */
function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('Queue', () => {
  it('hands keys out in FIFO order and dedups keys already queued', async () => {
    const q = queue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('c');
    expect(q.len()).toBe(3);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBe('c');
    expect(q.len()).toBe(0);
  });

  it('does not hand a key being processed to a second worker; re-queues it on done', async () => {
    const q = queue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a'); // dirty while processing
    q.add('a'); // still one pending add
    expect(q.len()).toBe(0);
    expect(q.tryGet()).toBeUndefined();
    q.done('a');
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
    expect(q.processingCount()).toBe(0);
  });

  it('done() of a key not being processed does nothing', () => {
    const q = queue();
    q.done('x');
    q.add('a');
    q.done('a'); // queued, not processing
    expect(q.len()).toBe(1);
  });

  it('get() waits for a key, and waiting workers are served in order with distinct keys', async () => {
    const q = queue();
    const got: (string | undefined)[] = [];
    const w1 = q.get().then((k) => got.push(`w1:${k}`));
    const w2 = q.get().then((k) => got.push(`w2:${k}`));
    await tick();
    expect(got).toEqual([]);
    q.add('a');
    q.add('b');
    await Promise.all([w1, w2]);
    expect(got).toEqual(['w1:a', 'w2:b']);
    expect(q.processingCount()).toBe(2);
  });

  it('a key added while a worker waits is handed over at once, so a later get cannot take it', async () => {
    const q = queue();
    const waiting = q.get();
    q.add('a');
    expect(q.tryGet()).toBeUndefined();
    expect(await waiting).toBe('a');
  });

  it('shutDown wakes waiters with undefined, ignores adds and hands out nothing more', async () => {
    const q = queue();
    q.add('queued');
    expect(await q.get()).toBe('queued');
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    expect(q.shuttingDown()).toBe(true);
    q.add('late');
    expect(await q.get()).toBeUndefined();
    expect(q.len()).toBe(0);
  });

  it('after shutDown keys still queued are not handed out (stop taking work)', async () => {
    const q = queue();
    q.add('a');
    q.add('b');
    q.shutDown();
    expect(await q.get()).toBeUndefined();
  });

  it('shutDownWithDrain resolves only once every handed-out key is done', async () => {
    const q = queue();
    q.add('a');
    q.add('b');
    const a = await q.get();
    const b = await q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false);
    q.done(a as string);
    await tick();
    expect(drained).toBe(false);
    q.done(b as string);
    await drain;
    expect(drained).toBe(true);
  });

  it('shutDownWithDrain with nothing in flight resolves at once; shutDown cuts a running drain short', async () => {
    const idle = queue();
    await idle.shutDownWithDrain();

    const q = queue();
    q.add('a');
    await q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false);
    q.shutDown();
    await drain;
    expect(drained).toBe(true);
  });

  it('keeps FIFO across the internal compaction of its buffer', async () => {
    const q = queue();
    const n = 5000;
    for (let i = 0; i < n; i++) q.add(`k${i}`);
    for (let i = 0; i < n; i++) {
      const k = await q.get();
      expect(k).toBe(`k${i}`);
      q.done(k as string);
      if (i % 3 === 0) q.add(`again${i}`);
    }
    expect(q.len()).toBe(Math.ceil(n / 3));
    expect(await q.get()).toBe('again0');
  });

  it('under contention never gives a key to two workers, and processes every add made after the last start', async () => {
    // Seeded PRNG so a failure reproduces.
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const yieldSome = async (max: number) => {
      const n = Math.floor(rand() * max);
      for (let i = 0; i < n; i++) await (i % 4 === 0 ? tick() : Promise.resolve());
    };

    const q = queue();
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    let events = 0;
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    const inFlight = new Set<string>();
    const violations: string[] = [];
    let processed = 0;

    const worker = async () => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        if (inFlight.has(key)) violations.push(key);
        inFlight.add(key);
        lastStart.set(key, events++);
        processed++;
        await yieldSome(6);
        inFlight.delete(key);
        q.done(key);
      }
    };
    const producer = async () => {
      for (let i = 0; i < 500; i++) {
        const key = keys[Math.floor(rand() * keys.length)] as string;
        lastAdd.set(key, events++);
        q.add(key);
        await yieldSome(3);
      }
    };

    const workers = Array.from({ length: 8 }, () => worker());
    await Promise.all(Array.from({ length: 4 }, () => producer()));
    while (q.len() > 0 || q.processingCount() > 0) await tick();
    await q.shutDownWithDrain();
    await Promise.all(workers);

    expect(violations).toEqual([]);
    for (const [key, added] of lastAdd) {
      expect({ key, processedAfterLastAdd: (lastStart.get(key) ?? -1) > added }).toEqual({
        key,
        processedAfterLastAdd: true,
      });
    }
    // Dedup did collapse some of the 2000 adds, and nothing ran more often than it was added.
    expect(processed).toBeLessThan(2000);
    expect(processed).toBeGreaterThanOrEqual(keys.length);
  });
});
