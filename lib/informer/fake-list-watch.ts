/**
 * A scripted ListWatcher for unit tests: LIST answers are queued by the test, every WATCH
 * becomes a stream the test pushes events into (or fails, or ends). Calls are recorded.
 */
import type { KubeList, KubeObject, Status } from '../api/index.js';
import type { ListOptions, WatchEvent, WatchOptions } from '../client/types.js';
import { ApiError } from '../client/errors.js';
import type { ListWatcher } from './reflector.js';

type ListAnswer<T extends KubeObject> = KubeList<T> | Error | ((opts: ListOptions) => KubeList<T>);

export class FakeWatchStream<T extends KubeObject = KubeObject> implements AsyncIterable<WatchEvent<T>> {
  private readonly queue: ({ ev: WatchEvent<T> } | { end: true } | { err: unknown })[] = [];
  private wakeUp: (() => void) | undefined;
  ended = false;

  constructor(
    readonly opts: WatchOptions,
    readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  push(type: WatchEvent['type'], object: T): this {
    this.queue.push({ ev: { type, object } });
    this.wake();
    return this;
  }

  bookmark(resourceVersion: string, annotations?: Record<string, string>): this {
    return this.push('BOOKMARK', { metadata: { resourceVersion, annotations } } as T);
  }

  /** A watch ERROR event carrying a metav1.Status. */
  errorEvent(code: number, reason: string, message: string): this {
    const status: Status = { kind: 'Status', status: 'Failure', code, reason, message };
    return this.push('ERROR', status as unknown as T);
  }

  /** The server closes the stream normally. */
  end(): void {
    this.queue.push({ end: true });
    this.wake();
  }

  /** The connection breaks. */
  fail(err: unknown): void {
    this.queue.push({ err });
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
    try {
      for (;;) {
        if (this.signal.aborted) return;
        const item = this.queue.shift();
        if (!item) {
          await new Promise<void>((resolve) => (this.wakeUp = resolve));
          continue;
        }
        if ('end' in item) return;
        if ('err' in item) throw item.err;
        yield item.ev;
      }
    } finally {
      this.ended = true;
    }
  }
}

export class FakeListWatch<T extends KubeObject = KubeObject> implements ListWatcher<T> {
  readonly listCalls: ListOptions[] = [];
  readonly watchCalls: WatchOptions[] = [];
  readonly streams: FakeWatchStream<T>[] = [];
  private readonly listAnswers: ListAnswer<T>[] = [];
  private readonly watchFailures: unknown[] = [];

  /** Queue answers for the next LIST calls (an Error is thrown). */
  onList(...answers: ListAnswer<T>[]): this {
    this.listAnswers.push(...answers);
    return this;
  }

  /** Make the next WATCH call fail at once (as the HTTP request would). */
  failNextWatch(err: unknown): this {
    this.watchFailures.push(err);
    return this;
  }

  async list(opts: ListOptions = {}): Promise<KubeList<T>> {
    this.listCalls.push({ ...opts });
    const answer = this.listAnswers.shift();
    if (answer === undefined) throw new Error(`unexpected LIST #${this.listCalls.length}`);
    if (answer instanceof Error) throw answer;
    return typeof answer === 'function' ? answer(opts) : answer;
  }

  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    this.watchCalls.push({ ...opts });
    if (this.watchFailures.length > 0) {
      const err = this.watchFailures.shift();
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.reject(err),
        }),
      };
    }
    const stream = new FakeWatchStream<T>(opts, signal);
    this.streams.push(stream);
    return stream;
  }

  /** The newest watch stream. */
  get current(): FakeWatchStream<T> {
    const s = this.streams[this.streams.length - 1];
    if (!s) throw new Error('no watch started yet');
    return s;
  }
}

export function listOf<T extends KubeObject>(
  items: T[],
  resourceVersion: string,
  cont?: string,
): KubeList<T> {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion, continue: cont }, items };
}

export function goneError(verb = 'watch'): ApiError {
  return new ApiError({
    code: 410,
    reason: 'Expired',
    message: 'too old resource version',
    verb,
    resource: 'configmaps',
  });
}
