/**
 * Work-queue micro-benchmark: add / get / done throughput, alone and under contention
 * (many producers and workers interleaving on one queue), with and without metrics, plus
 * the addAfter heap. Each scenario runs for a bounded time; results print as a table.
 *
 * Run through `npm run bench` (the lead's runner imports runWorkqueueBench), or directly:
 * `node dist/test/bench/workqueue.bench.js [durationMs]`.
 */
import { pathToFileURL } from 'node:url';
import { RealClock, type Clock, type TimerHandle } from '../../lib/clock/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { newDelayingQueue, newRateLimitingQueue } from '../../lib/workqueue/index.js';
import { RegistryQueueMetrics } from '../../lib/workqueue/metrics.js';

export interface WorkqueueBenchOptions {
  /** Wall time per scenario. Default 1000 ms. */
  durationMs?: number;
  /** Where the table goes. Default console.log. */
  print?: (line: string) => void;
}

export interface WorkqueueBenchResult {
  scenario: string;
  /** Keys that went through add -> get -> done (or add -> fire for the delay scenario). */
  items: number;
  /** Queue calls made (add, get, done, addAfter). */
  ops: number;
  seconds: number;
  itemsPerSecond: number;
  opsPerSecond: number;
  note: string;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One worker, one key at a time: the bare cost of add + get + done. */
async function sequential(
  durationMs: number,
  withMetrics: boolean,
): Promise<Omit<WorkqueueBenchResult, 'scenario'>> {
  const q = newRateLimitingQueue<string>({
    name: 'bench',
    registry: withMetrics ? newRegistry() : undefined,
  });
  const keys = Array.from({ length: 10_000 }, (_, i) => `ns/key-${i}`);
  const start = performance.now();
  let items = 0;
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 1000; i++) {
      q.add(keys[items % keys.length] as string);
      const k = (await q.get()) as string;
      q.done(k);
      items++;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  q.shutDown();
  return {
    items,
    ops: items * 3,
    seconds,
    itemsPerSecond: items / seconds,
    opsPerSecond: (items * 3) / seconds,
    note: '',
  };
}

/**
 * The metrics alone, as a queue drives them per key (add, get, done): what recording costs on
 * the hot path, without the queue around it. `note` gives nanoseconds per key.
 */
function metricsPerKey(durationMs: number): Omit<WorkqueueBenchResult, 'scenario'> {
  const m = new RegistryQueueMetrics<string>('bench', newRegistry(), new RealClock());
  const keys = Array.from({ length: 1000 }, (_, i) => `ns/key-${i}`);
  const start = performance.now();
  let items = 0;
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 1000; i++) {
      const k = keys[i] as string;
      m.add(k);
      m.get(k);
      m.done(k);
    }
    items += 1000;
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    items,
    ops: items * 3,
    seconds,
    itemsPerSecond: items / seconds,
    opsPerSecond: (items * 3) / seconds,
    note: `${Math.round((seconds * 1e9) / items)} ns per key (add+get+done)`,
  };
}

/**
 * Producers add random keys from a small key space while workers take, "work" (one
 * microtask) and finish them: every hand-off, dedup and dirty re-queue path is exercised.
 */
async function contention(
  durationMs: number,
  producers: number,
  workers: number,
  keySpace: number,
  withMetrics: boolean,
): Promise<Omit<WorkqueueBenchResult, 'scenario'>> {
  const q = newRateLimitingQueue<string>({
    name: 'bench',
    registry: withMetrics ? newRegistry() : undefined,
  });
  const keys = Array.from({ length: keySpace }, (_, i) => `ns/key-${i}`);
  let adds = 0;
  let processed = 0;
  let seed = 7;
  const start = performance.now();
  const deadline = start + durationMs;

  const worker = async () => {
    for (;;) {
      const k = await q.get();
      if (k === undefined) return;
      await Promise.resolve();
      processed++;
      q.done(k);
    }
  };
  const producer = async () => {
    while (performance.now() < deadline) {
      for (let i = 0; i < 256; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        q.add(keys[seed % keySpace] as string);
        adds++;
      }
      await yieldToLoop();
    }
  };
  const running = Array.from({ length: workers }, () => worker());
  await Promise.all(Array.from({ length: producers }, () => producer()));
  await q.shutDownWithDrain();
  await Promise.all(running);
  const seconds = (performance.now() - start) / 1000;
  const ops = adds + processed * 2;
  return {
    items: processed,
    ops,
    seconds,
    itemsPerSecond: processed / seconds,
    opsPerSecond: ops / seconds,
    note: `${adds} adds collapsed to ${processed} reconciles (dedup)`,
  };
}

/**
 * A hand-driven clock that costs nothing per timer, so the delay scenario measures the
 * queue's heap and not the clock (FakeClock scans all its timers on every firing, fine in
 * tests, quadratic over 20k firings).
 */
class BenchClock implements Clock {
  private current = 0;
  private readonly timers = new Set<{ at: number; fn: () => void }>();
  now(): number {
    return this.current;
  }
  monotonicNow(): number {
    return this.current;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = { at: this.current + Math.max(0, ms), fn };
    this.timers.add(t);
    return { cancel: () => void this.timers.delete(t) };
  }
  sleep(): Promise<void> {
    throw new Error('not used by the bench');
  }
  /** Jump to the earliest timer, fire it; repeat until `time`. The queue keeps at most one timer. */
  advanceTo(time: number): void {
    for (;;) {
      let next: { at: number; fn: () => void } | undefined;
      for (const t of this.timers) if (t.at <= time && (!next || t.at < next.at)) next = t;
      if (!next) break;
      this.timers.delete(next);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = Math.max(this.current, time);
  }
}

/** addAfter with random delays, then time advanced past them all: the heap and its one timer. */
function delays(durationMs: number): Omit<WorkqueueBenchResult, 'scenario'> {
  const start = performance.now();
  let items = 0;
  let seed = 11;
  while (performance.now() - start < durationMs) {
    const clock = new BenchClock();
    const q = newDelayingQueue<string>({ name: 'bench', clock });
    const batch = 20_000;
    for (let i = 0; i < batch; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      q.addAfter(`ns/key-${i}`, 1 + (seed % 60_000));
    }
    clock.advanceTo(60_001);
    for (let k = q.tryGet(); k !== undefined; k = q.tryGet()) q.done(k);
    items += batch;
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    items,
    ops: items * 3,
    seconds,
    itemsPerSecond: items / seconds,
    opsPerSecond: (items * 3) / seconds,
    note: '20k distinct delays per round',
  };
}

function formatTable(results: WorkqueueBenchResult[]): string[] {
  const header = ['scenario', 'items/s', 'ops/s', 'items', 'seconds', 'note'];
  const rows = results.map((r) => [
    r.scenario,
    Math.round(r.itemsPerSecond).toLocaleString('en-US'),
    Math.round(r.opsPerSecond).toLocaleString('en-US'),
    String(r.items),
    r.seconds.toFixed(2),
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export async function runWorkqueueBench(opts: WorkqueueBenchOptions = {}): Promise<WorkqueueBenchResult[]> {
  const durationMs = opts.durationMs ?? 1000;
  const print = opts.print ?? ((line: string) => console.log(line));
  const scenarios: [string, () => Promise<Omit<WorkqueueBenchResult, 'scenario'>>][] = [
    ['add+get+done, 1 worker', () => sequential(durationMs, false)],
    ['add+get+done, 1 worker, metrics', () => sequential(durationMs, true)],
    ['metrics only, per key', async () => metricsPerKey(durationMs)],
    ['contention: 4 producers, 16 workers, 1k keys', () => contention(durationMs, 4, 16, 1000, false)],
    [
      'contention: 4 producers, 16 workers, 1k keys, metrics',
      () => contention(durationMs, 4, 16, 1000, true),
    ],
    ['contention: 4 producers, 50 workers, 1k keys', () => contention(durationMs, 4, 50, 1000, false)],
    [
      'contention: 4 producers, 50 workers, 1k keys, metrics',
      () => contention(durationMs, 4, 50, 1000, true),
    ],
    [
      'contention: 8 producers, 64 workers, 100k keys, metrics',
      () => contention(durationMs, 8, 64, 100_000, true),
    ],
    ['addAfter heap, timers fired (hand-driven clock)', async () => delays(durationMs)],
  ];
  const results: WorkqueueBenchResult[] = [];
  print(`workqueue benchmark (${durationMs} ms per scenario, node ${process.version})`);
  for (const [scenario, run] of scenarios) {
    await yieldToLoop();
    results.push({ scenario, ...(await run()) });
  }
  for (const line of formatTable(results)) print(line);
  return results;
}

export default runWorkqueueBench;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const durationMs = process.argv[2] ? Number(process.argv[2]) : undefined;
  await runWorkqueueBench({ durationMs });
}
