/**
 * FakeKubeClient: a KubeClient for unit tests, in the manner of client-go's fake clientset.
 * Every call is recorded in `actions` (tests assert the exact list), reactors can answer or
 * fail a call before the in-memory tracker sees it, and the tracker behaves enough like
 * an apiserver (resourceVersions, conflicts, finalizers, watches) for controllers and
 * informers to run against it.
 *
 * Patches are applied locally (see patchapply.ts): merge = RFC 7386, json = RFC 6902,
 * strategic = merge patch plus a few known list merge keys (`metadata.finalizers` as a set
 * union, `status.reservedFor` by uid, ...), apply = a merge of the applied object (no field
 * ownership; creates the object when missing, like server-side apply).
 */
import type { KubeList, KubeObject } from '../api/index.js';
import type { Clock } from '../clock/index.js';
import { newInvalid, newNotFound } from './errors.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patchapply.js';
import { fieldSelectorMatcher, labelSelectorMatcher } from './selectors.js';
import { ObjectTracker } from './tracker.js';
import type {
  DeleteOptions,
  KubeClient,
  GetOptions,
  ListOptions,
  PatchOptions,
  PatchType,
  ResourceClient,
  ResourceRef,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from './types.js';
import { qualifiedResource } from './types.js';

export type FakeVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/**
 * One recorded call. Fields that do not apply are absent (not undefined), so tests can
 * `expect(fake.actions).toEqual([{ verb: 'get', resource: 'pods', namespace: 'ns', name: 'p' }])`.
 * `namespace` is present only for namespaced resources. `options` holds list/watch/delete
 * options other than the namespace, only when there are any.
 */
export interface FakeAction {
  verb: FakeVerb;
  resource: string; // plural, e.g. 'pods'
  namespace?: string;
  name?: string;
  subresource?: string;
  patchType?: PatchType;
  fieldManager?: string;
  force?: boolean;
  dryRun?: boolean;
  body?: unknown;
  options?:
    Omit<ListOptions, 'namespace'> | Omit<WatchOptions, 'namespace'> | Omit<DeleteOptions, 'namespace'>;
}

/**
 * Answers a call before the tracker does: return a value to short-circuit (the object for
 * get/create/update/patch, a KubeList for list, an AsyncIterable<WatchEvent> for watch,
 * anything for delete), return undefined to fall through, throw (e.g. an ApiError) to fail.
 */
export type Reactor = (action: FakeAction) => unknown;

interface ReactorEntry {
  verb: FakeVerb | '*';
  resource: string;
  fn: Reactor;
}

export interface FakeKubeClientOptions {
  /** Timestamps (creationTimestamp, deletionTimestamp) come from this clock. Default: real time. */
  clock?: Clock;
  /** Resources outside the `Resources` catalogue that seeded objects belong to. */
  resources?: ResourceRef[];
}

export class FakeKubeClient implements KubeClient {
  readonly tracker: ObjectTracker;
  /** Every call, in order. */
  readonly actions: FakeAction[] = [];
  /** What serverVersion() answers. */
  version = { gitVersion: 'v1.34.0', major: '1', minor: '34' };
  /** What requestRaw() answers; replace to script responses. */
  rawHandler: (method: string, path: string, body?: unknown) => { status: number; body: string } = () => ({
    status: 200,
    body: 'ok',
  });
  private readonly reactors: ReactorEntry[] = [];

  constructor(objects: KubeObject[] = [], opts: FakeKubeClientOptions = {}) {
    this.tracker = new ObjectTracker({ clock: opts.clock, resources: opts.resources });
    for (const obj of objects) this.tracker.add(obj);
  }

  clearActions(): void {
    this.actions.length = 0;
  }

  /** Actions other than get/list/watch: what a controller wrote. */
  writeActions(): FakeAction[] {
    return this.actions.filter((a) => a.verb !== 'get' && a.verb !== 'list' && a.verb !== 'watch');
  }

  /**
   * Put a reactor in front of the others. `resource` is a plural ('pods'), a qualified name
   * ('servicecidrs.networking.k8s.io') or '*'.
   */
  prependReactor(verb: FakeVerb | '*', resource: string, fn: Reactor): void {
    this.reactors.unshift({ verb, resource, fn });
  }

  resource<T extends KubeObject = KubeObject>(ref: ResourceRef<T>): ResourceClient<T> {
    this.tracker.register(ref);
    return new FakeResourceClient<T>(this, ref);
  }

  async serverVersion(): Promise<{ gitVersion: string; major: string; minor: string }> {
    return { ...this.version };
  }

  async requestRaw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return this.rawHandler(method, path, body);
  }

  /**
   * Record the action, then run reactors; `handled` is false when all fell through. As the
   * real client: a request whose `signal` has aborted is neither sent nor recorded, and one
   * aborted while a reactor holds it rejects with the signal's reason at once.
   */
  async invoke(
    action: FakeAction,
    ref: ResourceRef,
    signal?: AbortSignal,
  ): Promise<{ handled: boolean; result?: unknown }> {
    signal?.throwIfAborted();
    this.actions.push(structuredClone(action));
    for (const r of this.reactors) {
      if (r.verb !== '*' && r.verb !== action.verb) continue;
      if (r.resource !== '*' && r.resource !== ref.resource && r.resource !== qualifiedResource(ref))
        continue;
      const result = await abortable(Promise.resolve(r.fn(structuredClone(action))), signal);
      if (result !== undefined) return { handled: true, result };
    }
    signal?.throwIfAborted();
    return { handled: false };
  }
}

function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** `p`, or a rejection with the signal's reason as soon as `signal` aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Recorded options: without the namespace (it has its own field) and the signal (not data). */
function withoutNamespace<T extends { namespace?: string; signal?: AbortSignal }>(
  opts: T | undefined,
): Omit<T, 'namespace' | 'signal'> | undefined {
  if (!opts) return undefined;
  const rest: Partial<T> = { ...opts };
  delete rest.namespace;
  delete rest.signal;
  defined(rest);
  return Object.keys(rest).length ? (rest as Omit<T, 'namespace' | 'signal'>) : undefined;
}

function toPartialMetadata(obj: KubeObject): KubeObject {
  return { apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: obj.metadata };
}

class FakeResourceClient<T extends KubeObject> implements ResourceClient<T> {
  constructor(
    private readonly fake: FakeKubeClient,
    readonly ref: ResourceRef,
  ) {}

  private ns(namespace: string | undefined): string | undefined {
    return this.ref.namespaced ? namespace : undefined;
  }

  private action(a: FakeAction): FakeAction {
    return defined(a);
  }

  async get(name: string, namespace?: string, opts: GetOptions = {}): Promise<T> {
    const ns = this.ns(namespace);
    const r = await this.fake.invoke(
      this.action({ verb: 'get', resource: this.ref.resource, namespace: ns, name }),
      this.ref,
      opts.signal,
    );
    if (r.handled) return r.result as T;
    const obj = this.fake.tracker.get(this.ref, ns, name);
    if (!obj) throw newNotFound(this.ref, name, 'get');
    return obj as T;
  }

  async list(opts: ListOptions = {}): Promise<KubeList<T>> {
    const ns = this.ns(opts.namespace);
    const action = this.action({
      verb: 'list',
      resource: this.ref.resource,
      namespace: ns,
      options: withoutNamespace(opts),
    });
    const r = await this.fake.invoke(action, this.ref, opts.signal);
    if (r.handled) return r.result as KubeList<T>;
    const matchLabels = labelSelectorMatcher(opts.labelSelector);
    const matchFields = fieldSelectorMatcher(opts.fieldSelector);
    let items = this.fake.tracker.list(this.ref, ns).filter((o) => matchLabels(o) && matchFields(o));
    // Pagination: the continue token is the offset of the next item (the snapshot is not
    // kept, unlike the apiserver's, so a page may see changes made between pages).
    const start = opts.continue ? Number(opts.continue) : 0;
    let next: string | undefined;
    if (opts.limit && opts.limit > 0 && start + opts.limit < items.length) next = String(start + opts.limit);
    items = items.slice(start, opts.limit && opts.limit > 0 ? start + opts.limit : undefined);
    const metadata = defined({ resourceVersion: this.fake.tracker.resourceVersion, continue: next });
    if (opts.metadataOnly) {
      return {
        apiVersion: 'meta.k8s.io/v1',
        kind: 'PartialObjectMetadataList',
        metadata,
        items: items.map(toPartialMetadata) as T[],
      };
    }
    return { apiVersion: items[0]?.apiVersion, kind: `${this.ref.kind}List`, metadata, items: items as T[] };
  }

  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    // Like the real client, nothing happens until iteration starts; errors surface from the iterator.
    return { [Symbol.asyncIterator]: () => this.watchStream(opts, signal) };
  }

  private async *watchStream(opts: WatchOptions, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const ns = this.ns(opts.namespace);
    const action = this.action({
      verb: 'watch',
      resource: this.ref.resource,
      namespace: ns,
      options: withoutNamespace(opts),
    });
    const r = await this.fake.invoke(action, this.ref);
    if (r.handled) {
      yield* r.result as AsyncIterable<WatchEvent<T>>;
      return;
    }
    const transform = opts.metadataOnly ? toPartialMetadata : undefined;
    yield* this.fake.tracker.watch(this.ref, { ...opts, namespace: ns }, signal, transform) as AsyncIterable<
      WatchEvent<T>
    >;
  }

  async create(obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = this.ns(opts.namespace ?? obj.metadata?.namespace);
    const action = this.writeAction('create', ns, obj.metadata?.name, opts, obj);
    const r = await this.fake.invoke(action, this.ref, opts.signal);
    if (r.handled) return r.result as T;
    // A POST to a subresource (eviction, token) stores nothing here; a reactor may answer it.
    if (opts.subresource) return structuredClone(obj);
    return this.fake.tracker.create(this.ref, obj, ns, opts.dryRun) as T;
  }

  async update(obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = this.ns(opts.namespace ?? obj.metadata?.namespace);
    const action = this.writeAction('update', ns, obj.metadata?.name, opts, obj);
    const r = await this.fake.invoke(action, this.ref, opts.signal);
    if (r.handled) return r.result as T;
    return this.fake.tracker.update(this.ref, obj, ns, 'update', opts.dryRun) as T;
  }

  async patch(name: string, patch: unknown, opts: PatchOptions): Promise<T> {
    const ns = this.ns(opts.namespace);
    const action = this.writeAction('patch', ns, name, opts, patch);
    action.patchType = opts.type;
    if (opts.force !== undefined) action.force = opts.force;
    const r = await this.fake.invoke(action, this.ref, opts.signal);
    if (r.handled) return r.result as T;

    const body = typeof patch === 'string' ? (JSON.parse(patch) as unknown) : patch;
    const current = this.fake.tracker.get(this.ref, ns, name);
    if (!current) {
      if (opts.type !== 'apply') throw newNotFound(this.ref, name, 'patch');
      const created = applyMergePatch({ metadata: { name, namespace: ns } }, body) as T;
      return this.fake.tracker.create(this.ref, created, ns, opts.dryRun) as T;
    }
    let next: unknown;
    try {
      switch (opts.type) {
        case 'json':
          next = applyJsonPatch(current, body);
          break;
        case 'strategic':
          next = applyStrategicMergePatch(current, body);
          break;
        case 'merge':
        case 'apply':
          next = applyMergePatch(current, body);
          break;
      }
    } catch (err) {
      if (err instanceof PatchError) throw newInvalid(this.ref, name, err.message, 'patch');
      throw err;
    }
    const patched = next as T;
    if (patched.metadata?.name !== name)
      throw newInvalid(
        this.ref,
        name,
        'metadata.name: Invalid value: the name cannot be changed by a patch',
        'patch',
      );
    return this.fake.tracker.update(this.ref, patched, ns, 'patch', opts.dryRun) as T;
  }

  async delete(name: string, opts: DeleteOptions = {}): Promise<void> {
    const ns = this.ns(opts.namespace);
    const action = this.action({
      verb: 'delete',
      resource: this.ref.resource,
      namespace: ns,
      name,
      options: withoutNamespace(opts),
    });
    const r = await this.fake.invoke(action, this.ref, opts.signal);
    if (r.handled) return;
    this.fake.tracker.delete(this.ref, ns, name, opts.preconditions);
  }

  private writeAction(
    verb: FakeVerb,
    ns: string | undefined,
    name: string | undefined,
    opts: WriteOptions,
    body: unknown,
  ): FakeAction {
    return this.action({
      verb,
      resource: this.ref.resource,
      namespace: ns,
      name,
      subresource: opts.subresource,
      fieldManager: opts.fieldManager,
      dryRun: opts.dryRun || undefined,
      body,
    });
  }
}
