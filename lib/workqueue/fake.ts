import type { RateLimitingQueue } from './types.js';

/** A queue for unit tests of event handlers: it only records what was asked of it. */
export class RecordingQueue<K = string> implements RateLimitingQueue<K> {
  readonly added: K[] = [];
  readonly delayed: { key: K; delayMs: number }[] = [];
  readonly rateLimited: K[] = [];

  add(key: K): void {
    this.added.push(key);
  }
  addAfter(key: K, delayMs: number): void {
    this.delayed.push({ key, delayMs });
  }
  addRateLimited(key: K): void {
    this.rateLimited.push(key);
  }
  async get(): Promise<K | undefined> {
    return this.added.shift();
  }
  done(): void {}
  len(): number {
    return this.added.length;
  }
  shutDown(): void {}
  async shutDownWithDrain(): Promise<void> {}
  shuttingDown(): boolean {
    return false;
  }
  forget(): void {}
  numRequeues(): number {
    return 0;
  }
}
