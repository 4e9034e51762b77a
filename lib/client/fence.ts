/**
 * A fenced client: every request made through it carries `fence` (together with the caller's
 * own signal), so when the fence aborts — the Lease is lost, or the shutdown budget is spent —
 * requests in flight are cancelled and no further request leaves the process, even from code
 * that forgot to pass its signal. The manager hands controllers and the event sink such a
 * client; informers (reads only) and the Lease keep the plain one.
 */
import type { KubeObject } from '../api/index.js';
import type {
  DeleteOptions,
  GetOptions,
  KubeClient,
  ListOptions,
  PatchOptions,
  ResourceClient,
  ResourceRef,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from './types.js';

export function fencedClient(client: KubeClient, fence: AbortSignal): KubeClient {
  return {
    resource: <T extends KubeObject = KubeObject>(ref: ResourceRef<T>) =>
      new FencedResourceClient<T>(client.resource<T>(ref), fence),
    serverVersion: async () => {
      fence.throwIfAborted();
      return client.serverVersion();
    },
    requestRaw: async (method, path, body) => {
      fence.throwIfAborted();
      return client.requestRaw(method, path, body);
    },
  };
}

class FencedResourceClient<T extends KubeObject> implements ResourceClient<T> {
  constructor(
    private readonly inner: ResourceClient<T>,
    private readonly fence: AbortSignal,
  ) {}

  get ref(): ResourceRef {
    return this.inner.ref;
  }

  /** The caller's signal joined with the fence; throws at once if either has aborted. */
  private signal(own: AbortSignal | undefined): AbortSignal {
    const signal = own ? AbortSignal.any([own, this.fence]) : this.fence;
    signal.throwIfAborted();
    return signal;
  }

  async get(name: string, namespace?: string, opts: GetOptions = {}): Promise<T> {
    return this.inner.get(name, namespace, { ...opts, signal: this.signal(opts.signal) });
  }

  async list(opts: ListOptions = {}) {
    return this.inner.list({ ...opts, signal: this.signal(opts.signal) });
  }

  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    return this.inner.watch(opts, AbortSignal.any([signal, this.fence]));
  }

  async create(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.inner.create(obj, { ...opts, signal: this.signal(opts.signal) });
  }

  async update(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.inner.update(obj, { ...opts, signal: this.signal(opts.signal) });
  }

  async patch(name: string, patch: unknown, opts: PatchOptions): Promise<T> {
    return this.inner.patch(name, patch, { ...opts, signal: this.signal(opts.signal) });
  }

  async delete(name: string, opts: DeleteOptions = {}): Promise<void> {
    return this.inner.delete(name, { ...opts, signal: this.signal(opts.signal) });
  }
}
