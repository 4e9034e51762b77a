/**
 * addAfter(key, ms): keys wait in a min-heap ordered by ready time, and one Clock timer is
 * armed for the earliest. As in client-go, a key already waiting keeps the EARLIER of its
 * two ready times (a short retry is not pushed back by a later long one), and a delay <= 0
 * adds at once. Ready times are on the monotonic clock, so a wall-clock step moves no key.
 * Every addAfter counts as a retry in workqueue_retries_total, like client-go.
 */
import type { TimerHandle } from '../clock/index.js';
import { Queue } from './queue.js';
import type { QueueOptions } from './queue.js';
import type { DelayingQueue } from './types.js';

interface Waiting<K> {
  key: K;
  readyAt: number;
  /** Insertion order, so keys ready at the same instant are added first-come first-served. */
  seq: number;
  /** Position in the heap array, kept current so an entry can be moved up in O(log n). */
  index: number;
}

/** Binary min-heap of waiting keys by (readyAt, seq). */
class WaitingHeap<K> {
  private readonly items: Waiting<K>[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Waiting<K> | undefined {
    return this.items[0];
  }

  push(w: Waiting<K>): void {
    w.index = this.items.length;
    this.items.push(w);
    this.up(w.index);
  }

  pop(): Waiting<K> | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (top === undefined || last === undefined) return undefined;
    if (last !== top) {
      this.items[0] = last;
      last.index = 0;
      this.down(0);
    }
    return top;
  }

  /** Call after lowering `w.readyAt`. */
  moved(w: Waiting<K>): void {
    this.up(w.index);
  }

  clear(): void {
    this.items.length = 0;
  }

  private less(a: Waiting<K>, b: Waiting<K>): boolean {
    return a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i] as Waiting<K>;
    const b = this.items[j] as Waiting<K>;
    this.items[i] = b;
    this.items[j] = a;
    a.index = j;
    b.index = i;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(this.items[i] as Waiting<K>, this.items[parent] as Waiting<K>)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.less(this.items[l] as Waiting<K>, this.items[smallest] as Waiting<K>)) smallest = l;
      if (r < n && this.less(this.items[r] as Waiting<K>, this.items[smallest] as Waiting<K>)) smallest = r;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}

export class DelayedQueue<K = string> extends Queue<K> implements DelayingQueue<K> {
  private readonly heap = new WaitingHeap<K>();
  private readonly waiting = new Map<K, Waiting<K>>();
  private seq = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(opts: QueueOptions) {
    super(opts);
  }

  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown()) return;
    this.metrics.retry();
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.monotonicNow() + delayMs;
    const existing = this.waiting.get(key);
    if (existing) {
      if (readyAt < existing.readyAt) {
        existing.readyAt = readyAt;
        this.heap.moved(existing);
      }
    } else {
      const w: Waiting<K> = { key, readyAt, seq: this.seq++, index: -1 };
      this.waiting.set(key, w);
      this.heap.push(w);
    }
    this.arm();
  }

  /** Keys waiting for their delay to pass (tests, benchmarks). */
  waitingCount(): number {
    return this.heap.size;
  }

  protected override stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    this.heap.clear();
    this.waiting.clear();
    super.stop();
  }

  /** Keep exactly one timer, set for the earliest ready time. */
  private arm(): void {
    const next = this.heap.peek();
    if (!next) {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= next.readyAt) return;
    this.timer?.cancel();
    this.timerAt = next.readyAt;
    this.timer = this.clock.setTimer(Math.max(0, next.readyAt - this.clock.monotonicNow()), () =>
      this.fire(),
    );
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.monotonicNow();
    for (let next = this.heap.peek(); next && next.readyAt <= now; next = this.heap.peek()) {
      this.heap.pop();
      this.waiting.delete(next.key);
      this.add(next.key);
    }
    // A real timer may fire a hair early; whatever is not due yet gets a fresh timer.
    this.arm();
  }
}

export function newDelayingQueue<K = string>(opts: QueueOptions): DelayedQueue<K> {
  return new DelayedQueue<K>(opts);
}
