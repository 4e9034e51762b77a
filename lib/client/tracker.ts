/**
 * ObjectTracker: the in-memory "apiserver" behind FakeKubeClient. It keeps objects per
 * resource, hands out uids and one global, incrementing resourceVersion (like etcd's
 * revision), keeps a bounded history of changes so a watch can resume from a
 * resourceVersion, and feeds open watches.
 *
 * What it imitates from the apiserver: AlreadyExists on create, Conflict on a stale update,
 * delete preconditions, generateName, deletion that waits for finalizers (deletionTimestamp
 * set, object removed when the last finalizer goes), generation bumps on spec changes.
 * What it does not: validation, defaulting, admission, the status subresource's field
 * reset (a write to `status` or `finalizers` replaces the whole stored object).
 */
import { formatTime, type KubeObject } from '../api/index.js';
import { RealClock, type Clock } from '../clock/index.js';
import { newAlreadyExists, newBadRequest, newConflict, newGone, newInvalid, newNotFound } from './errors.js';
import { deepEqual } from './patchapply.js';
import { fieldSelectorMatcher, labelSelectorMatcher } from './selectors.js';
import {
  apiVersionOf,
  qualifiedResource,
  Resources,
  type ResourceRef,
  type WatchEvent,
  type WatchOptions,
} from './types.js';

/** How many changes the tracker remembers for watch resumption (the apiserver's watch cache is bigger). */
const historyLimit = 10_000;

/** Alphabet of the apiserver's generateName suffix (no vowels, no look-alikes). */
const suffixAlphabet = 'bcdfghjklmnpqrstvwxz2456789';

interface Change {
  key: string;
  rv: number;
  event: WatchEvent;
}

interface Watcher {
  key: string;
  matches: (obj: KubeObject) => boolean;
  queue: WatchEvent[];
  closed: boolean;
  wake: () => void;
}

export interface TrackerOptions {
  clock?: Clock;
  /** Resources beyond the `Resources` catalogue that seeded objects may belong to. */
  resources?: ResourceRef[];
}

export function resourceKey(ref: Pick<ResourceRef, 'group' | 'resource'>): string {
  return qualifiedResource(ref);
}

function objectKey(namespace: string, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class ObjectTracker {
  private readonly clock: Clock;
  private readonly refs = new Map<string, ResourceRef>();
  private readonly stores = new Map<string, Map<string, KubeObject>>();
  private readonly history: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private rv = 0;
  private uids = 0;
  private generatedNames = 0;

  constructor(opts: TrackerOptions = {}) {
    this.clock = opts.clock ?? new RealClock();
    for (const ref of [...Object.values(Resources), ...(opts.resources ?? [])]) this.register(ref);
  }

  /** Make a resource known (FakeKubeClient.resource() does this for any ref it is given). */
  register(ref: ResourceRef): void {
    this.refs.set(resourceKey(ref), ref);
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /**
   * Resolve `configmaps`, `servicecidrs.networking.k8s.io`, a plain plural that names one
   * known resource (`servicecidrs`), or a ResourceRef.
   */
  resolve(resource: string | ResourceRef): ResourceRef {
    if (typeof resource !== 'string') {
      this.register(resource);
      return resource;
    }
    const exact = this.refs.get(resource);
    if (exact) return exact;
    const byPlural = [...this.refs.values()].filter((r) => r.resource === resource);
    if (byPlural.length === 1) return byPlural[0];
    throw new Error(`fake tracker: unknown or ambiguous resource ${JSON.stringify(resource)}`);
  }

  refForObject(obj: KubeObject): ResourceRef {
    const ref = [...this.refs.values()].find(
      (r) => r.kind === obj.kind && apiVersionOf(r) === obj.apiVersion,
    );
    if (!ref) {
      throw new Error(
        `fake tracker: no resource for apiVersion=${String(obj.apiVersion)} kind=${String(obj.kind)}; ` +
          'seeded objects need apiVersion and kind of a known resource (pass extra refs in options.resources)',
      );
    }
    return ref;
  }

  /** A copy of the stored object, or undefined. */
  get(resource: string | ResourceRef, namespace: string | undefined, name: string): KubeObject | undefined {
    const ref = this.resolve(resource);
    const obj = this.store(ref).get(objectKey(ref.namespaced ? (namespace ?? '') : '', name));
    return obj && clone(obj);
  }

  /** Copies of the stored objects (of one namespace, if given), sorted by namespace/name. */
  list(resource: string | ResourceRef, namespace?: string): KubeObject[] {
    const ref = this.resolve(resource);
    const out: KubeObject[] = [];
    for (const [key, obj] of [...this.store(ref).entries()].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    )) {
      void key;
      if (ref.namespaced && namespace && obj.metadata.namespace !== namespace) continue;
      out.push(clone(obj));
    }
    return out;
  }

  /** Seed or inject an object, bypassing conflict checks (kept uid/resourceVersion if set). Emits ADDED or MODIFIED. */
  add(obj: KubeObject, ref: ResourceRef = this.refForObject(obj)): KubeObject {
    const stored = clone(obj);
    this.fillTypeMeta(stored, ref);
    const ns = ref.namespaced ? (stored.metadata.namespace ?? '') : '';
    if (!ref.namespaced) delete stored.metadata.namespace;
    const name = stored.metadata.name;
    if (!name) throw new Error('fake tracker: add needs metadata.name');
    stored.metadata.uid ??= this.nextUid();
    const seededRv = Number(stored.metadata.resourceVersion);
    if (Number.isInteger(seededRv) && seededRv > this.rv) this.rv = seededRv;
    if (!stored.metadata.resourceVersion) stored.metadata.resourceVersion = this.nextRv();
    stored.metadata.creationTimestamp ??= this.timestamp();
    const existed = this.store(ref).has(objectKey(ns, name));
    this.store(ref).set(objectKey(ns, name), stored);
    this.emit(
      ref,
      existed ? 'MODIFIED' : 'ADDED',
      stored,
      Number(stored.metadata.resourceVersion) || this.rv,
    );
    return clone(stored);
  }

  create(ref: ResourceRef, obj: KubeObject, namespace: string | undefined, dryRun = false): KubeObject {
    const stored = clone(obj);
    this.fillTypeMeta(stored, ref);
    const ns = this.namespaceFor(ref, stored, namespace, 'create');
    const meta = stored.metadata;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + this.nextSuffix();
    if (!meta.name)
      throw newInvalid(ref, '', 'metadata.name: Required value: name or generateName is required');
    if (meta.resourceVersion)
      throw newBadRequest(ref, 'resourceVersion should not be set on objects to be created', 'create');
    if (this.store(ref).has(objectKey(ns, meta.name))) throw newAlreadyExists(ref, meta.name);
    meta.uid = this.nextUid();
    meta.creationTimestamp = this.timestamp();
    meta.generation = 1;
    delete meta.deletionTimestamp;
    if (dryRun) return stored;
    meta.resourceVersion = this.nextRv();
    this.store(ref).set(objectKey(ns, meta.name), stored);
    this.emit(ref, 'ADDED', stored, this.rv);
    return clone(stored);
  }

  /**
   * PUT semantics: an empty resourceVersion updates unconditionally (the apiserver allows it for
   * most resources); a stale one fails with Conflict.
   */
  update(
    ref: ResourceRef,
    obj: KubeObject,
    namespace: string | undefined,
    verb = 'update',
    dryRun = false,
  ): KubeObject {
    const next = clone(obj);
    this.fillTypeMeta(next, ref);
    const ns = this.namespaceFor(ref, next, namespace, verb);
    const name = next.metadata.name ?? '';
    const current = this.store(ref).get(objectKey(ns, name));
    if (!current) throw newNotFound(ref, name, verb);
    const wanted = next.metadata.resourceVersion;
    if (wanted && wanted !== current.metadata.resourceVersion) throw newConflict(ref, name, verb);
    const meta = next.metadata;
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    // Once set, deletionTimestamp cannot be cleared or moved.
    if (current.metadata.deletionTimestamp) {
      meta.deletionTimestamp = current.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp;
    }
    meta.generation = (current.metadata.generation ?? 1) + (specChanged(current, next) ? 1 : 0);
    if (dryRun) return next;
    meta.resourceVersion = this.nextRv();
    if (meta.deletionTimestamp && !(meta.finalizers?.length ?? 0)) {
      this.store(ref).delete(objectKey(ns, name));
      this.emit(ref, 'DELETED', next, this.rv);
    } else {
      this.store(ref).set(objectKey(ns, name), next);
      this.emit(ref, 'MODIFIED', next, this.rv);
    }
    return clone(next);
  }

  /**
   * DELETE: with finalizers the object only gets a deletionTimestamp; without, it goes.
   * Returns the object as last stored (or as marked for deletion).
   */
  delete(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    preconditions?: { uid?: string; resourceVersion?: string },
    dryRun = false,
  ): KubeObject {
    const ns = ref.namespaced ? (namespace ?? '') : '';
    const current = this.store(ref).get(objectKey(ns, name));
    if (!current) throw newNotFound(ref, name, 'delete');
    if (preconditions?.uid && preconditions.uid !== current.metadata.uid) {
      throw newConflict(
        ref,
        name,
        'delete',
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid ?? ''}`,
      );
    }
    if (
      preconditions?.resourceVersion &&
      preconditions.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw newConflict(
        ref,
        name,
        'delete',
        `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`,
      );
    }
    const next = clone(current);
    if (dryRun) return next;
    next.metadata.resourceVersion = this.nextRv();
    if (next.metadata.finalizers?.length) {
      if (next.metadata.deletionTimestamp) return next; // already terminating: nothing changes
      next.metadata.deletionTimestamp = this.timestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      this.store(ref).set(objectKey(ns, name), next);
      this.emit(ref, 'MODIFIED', next, this.rv);
    } else {
      this.store(ref).delete(objectKey(ns, name));
      this.emit(ref, 'DELETED', next, this.rv);
    }
    return clone(next);
  }

  /** Remove an object outright (no finalizers, no preconditions), as another actor might. Emits DELETED. */
  remove(
    resource: string | ResourceRef,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const ref = this.resolve(resource);
    const key = objectKey(ref.namespaced ? (namespace ?? '') : '', name);
    const current = this.store(ref).get(key);
    if (!current) return undefined;
    this.store(ref).delete(key);
    current.metadata.resourceVersion = this.nextRv();
    this.emit(ref, 'DELETED', current, this.rv);
    return clone(current);
  }

  /**
   * A watch stream. No resourceVersion (or "0"): ADDED for every current object first, like
   * the apiserver. A resourceVersion: replay of later changes from history (410 Expired if
   * the history no longer reaches back that far). `sendInitialEvents`: ADDED for every
   * object, then (with allowWatchBookmarks) the `k8s.io/initial-events-end` bookmark.
   */
  watch(
    ref: ResourceRef,
    opts: WatchOptions,
    signal: AbortSignal,
    transform: (o: KubeObject) => KubeObject = (o) => o,
  ): AsyncIterable<WatchEvent> {
    const matchLabels = labelSelectorMatcher(opts.labelSelector);
    const matchFields = fieldSelectorMatcher(opts.fieldSelector);
    const ns = ref.namespaced ? opts.namespace : undefined;
    const matches = (o: KubeObject) =>
      (!ns || o.metadata.namespace === ns) && matchLabels(o) && matchFields(o);
    const watcher: Watcher = { key: resourceKey(ref), matches, queue: [], closed: false, wake: () => {} };

    // Everything up to registration happens synchronously, so no change can slip between
    // the initial state and the live feed.
    const rv = opts.resourceVersion;
    if (opts.sendInitialEvents || !rv || rv === '0') {
      for (const obj of this.list(ref, ns))
        if (matches(obj)) watcher.queue.push({ type: 'ADDED', object: obj });
      if (opts.sendInitialEvents && opts.allowWatchBookmarks) {
        watcher.queue.push({
          type: 'BOOKMARK',
          object: {
            apiVersion: apiVersionOf(ref),
            kind: ref.kind,
            metadata: {
              resourceVersion: this.resourceVersion,
              annotations: { 'k8s.io/initial-events-end': 'true' },
            },
          },
        });
      }
    } else {
      const from = Number(rv);
      const oldest = this.history.length ? this.history[0].rv : this.rv + 1;
      if (!Number.isInteger(from))
        throw newBadRequest(ref, `invalid resourceVersion ${JSON.stringify(rv)}`, 'watch');
      if (from < oldest - 1 && from < this.rv)
        throw newGone(ref, `too old resource version: ${from} (${oldest - 1})`);
      for (const c of this.history) {
        if (c.key === watcher.key && c.rv > from && matches(c.event.object))
          watcher.queue.push(clone(c.event));
      }
    }
    this.watchers.add(watcher);
    const watchers = this.watchers;

    async function* stream(): AsyncGenerator<WatchEvent> {
      const onAbort = () => watcher.wake();
      signal.addEventListener('abort', onAbort);
      try {
        while (!signal.aborted) {
          const next = watcher.queue.shift();
          if (next) {
            yield { type: next.type, object: next.type === 'ERROR' ? next.object : transform(next.object) };
            continue;
          }
          if (watcher.closed) return;
          await new Promise<void>((resolve) => {
            watcher.wake = resolve;
          });
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        watchers.delete(watcher);
      }
    }
    return stream();
  }

  /** Push an event (BOOKMARK, ERROR, anything) to every open watch of a resource. */
  sendWatchEvent(resource: string | ResourceRef, event: WatchEvent): void {
    const key = resourceKey(this.resolve(resource));
    for (const w of this.watchers) {
      if (w.key !== key) continue;
      w.queue.push(clone(event));
      w.wake();
    }
  }

  /** End every open watch of a resource (or of all), as when the server closes the stream. */
  closeWatches(resource?: string | ResourceRef): void {
    const key = resource === undefined ? undefined : resourceKey(this.resolve(resource));
    for (const w of this.watchers) {
      if (key !== undefined && w.key !== key) continue;
      w.closed = true;
      w.wake();
    }
  }

  /** Number of open watches (of one resource, if given). */
  openWatches(resource?: string | ResourceRef): number {
    const key = resource === undefined ? undefined : resourceKey(this.resolve(resource));
    return [...this.watchers].filter((w) => key === undefined || w.key === key).length;
  }

  private emit(ref: ResourceRef, type: WatchEvent['type'], obj: KubeObject, rv: number): void {
    const change: Change = { key: resourceKey(ref), rv, event: { type, object: clone(obj) } };
    this.history.push(change);
    if (this.history.length > historyLimit) this.history.shift();
    for (const w of this.watchers) {
      if (w.key !== change.key || w.closed || !w.matches(obj)) continue;
      w.queue.push(clone(change.event));
      w.wake();
    }
  }

  private store(ref: ResourceRef): Map<string, KubeObject> {
    const key = resourceKey(ref);
    let s = this.stores.get(key);
    if (!s) {
      s = new Map();
      this.stores.set(key, s);
    }
    return s;
  }

  private namespaceFor(
    ref: ResourceRef,
    obj: KubeObject,
    requested: string | undefined,
    verb: string,
  ): string {
    if (!ref.namespaced) {
      delete obj.metadata.namespace;
      return '';
    }
    const ns = requested ?? obj.metadata.namespace;
    if (!ns)
      throw newBadRequest(
        ref,
        `${qualifiedResource(ref)}: a namespace is required to ${verb} a namespaced resource`,
        verb,
      );
    if (obj.metadata.namespace && obj.metadata.namespace !== ns) {
      throw newBadRequest(
        ref,
        'the namespace of the provided object does not match the namespace sent on the request',
        verb,
      );
    }
    obj.metadata.namespace = ns;
    return ns;
  }

  private fillTypeMeta(obj: KubeObject, ref: ResourceRef): void {
    obj.metadata ??= {};
    obj.apiVersion ??= apiVersionOf(ref);
    obj.kind ??= ref.kind;
  }

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private nextUid(): string {
    this.uids += 1;
    return `fake-uid-${this.uids}`;
  }

  /** Deterministic 5-character suffix: the base-27 spelling of a counter in the apiserver's alphabet. */
  private nextSuffix(): string {
    let n = this.generatedNames++;
    let out = '';
    for (let i = 0; i < 5; i++) {
      out = suffixAlphabet[n % suffixAlphabet.length] + out;
      n = Math.floor(n / suffixAlphabet.length);
    }
    return out;
  }

  /** RFC 3339 with seconds precision, like metav1.Time. */
  private timestamp(): string {
    return formatTime(this.clock.now());
  }
}

/** True when anything other than metadata and status differs (the apiserver then bumps generation). */
function specChanged(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const rest: Record<string, unknown> = { ...o };
    delete rest.metadata;
    delete rest.status;
    delete rest.apiVersion;
    delete rest.kind;
    return rest;
  };
  return !deepEqual(strip(a), strip(b));
}
