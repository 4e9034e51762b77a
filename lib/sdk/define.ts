/**
 * defineController: one declaration of what a controller watches, how events map to keys,
 * what it may write, and its reconcile function. It returns an ordinary
 * ControllerDefinition, so a defined controller registers, resolves with --controllers,
 * gets its flags, metrics, leader election and RBAC exactly as the built-in ones do.
 *
 * The shape follows controller-runtime's builder (For / Owns / Watches) and kube-rs's
 * Controller: handlers only enqueue keys, reconcile reads the primary object from the
 * shared cache and returns "requeue after" or throws to be retried with backoff.
 */
import type { Condition, KubeObject, OwnerReference } from '../api/index.js';
import { formatTime } from '../api/index.js';
import type { KubeClient, ResourceRef } from '../client/types.js';
import { apiVersionOf } from '../client/types.js';
import { isInvalid } from '../client/errors.js';
import type { Clock } from '../clock/index.js';
import { Controller } from '../controller/controller.js';
import type {
  ControllerContext,
  ControllerDefinition,
  ControllerFlag,
  PolicyRule,
  ReconcileResult,
  ShardingDeclaration,
} from '../controller/types.js';
import type { EventRecorder } from '../events/types.js';
import {
  DeletedFinalStateUnknown,
  NAMESPACE_INDEX,
  type IndexFunc,
  type SharedIndexInformer,
} from '../informer/types.js';
import { metaNamespaceKey } from '../informer/store.js';
import type { Logger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import { defaultControllerRateLimiter, newRateLimitingQueue } from '../workqueue/index.js';
import { namespaceShardKey, shardedQueue } from '../sharding/index.js';

/** What a handler enqueues: the primary object's namespace (absent when cluster-scoped) and name. */
export interface ObjectKey {
  namespace?: string;
  name: string;
}

/** What reconcile is called with: the key, and the primary object from the cache (undefined once deleted). */
export interface ReconcileRequest<T extends KubeObject = KubeObject> extends ObjectKey {
  /** `namespace/name`, or `name` for a cluster-scoped object. */
  key: string;
  object: T | undefined;
}

/** An event filter on the primary resource: return false to ignore the change. */
export type Predicate<T extends KubeObject = KubeObject> = (oldObj: T | undefined, newObj: T) => boolean;

/** Change only when metadata.generation moved (spec changes), or on create. */
export function generationChanged<T extends KubeObject>(): Predicate<T> {
  return (oldObj, newObj) =>
    oldObj === undefined ||
    oldObj.metadata.generation !== newObj.metadata.generation ||
    oldObj.metadata.deletionTimestamp !== newObj.metadata.deletionTimestamp;
}

/** Only objects whose labels carry every key=value pair of `labels`. */
export function hasLabels<T extends KubeObject>(labels: Record<string, string>): Predicate<T> {
  return (_old, obj) => Object.entries(labels).every(([k, v]) => obj.metadata.labels?.[k] === v);
}

/** A write the controller makes, turned into a PolicyRule for the generated ClusterRole. */
export interface WriteRule {
  resource: Pick<ResourceRef, 'group' | 'resource'>;
  /** e.g. 'status', 'finalizers'. */
  subresource?: string;
  verbs: Array<'create' | 'update' | 'patch' | 'delete' | 'deletecollection'>;
}

/** A read-only view of one watched resource's shared cache. */
export interface CacheReader<T extends KubeObject = KubeObject> {
  /** `namespace/name`, or `name` for a cluster-scoped object. */
  get(key: string): T | undefined;
  list(): T[];
}

/**
 * The cache of any resource the controller declares in `for`, `owns` or `watches` (those
 * are the informers it starts and has RBAC for); any other resource throws.
 */
export type CacheLookup = <U extends KubeObject = KubeObject>(resource: ResourceRef) => CacheReader<U>;

export interface WatchSpec {
  resource: ResourceRef;
  /** The primary objects this object's change concerns; `cache` reads any watched resource. */
  map(obj: KubeObject, cache: CacheLookup): ObjectKey[];
}

export interface WorkersFlag {
  /** Flag name without dashes, e.g. 'concurrent-widget-syncs'. */
  flag: string;
  default: number;
  description?: string;
}

/** Everything reconcile may use. */
export interface ReconcileContext<T extends KubeObject = KubeObject> {
  client: KubeClient;
  recorder: EventRecorder;
  logger: Logger;
  /** Aborts on lost leadership and when the shutdown budget runs out: pass it to client calls. */
  signal: AbortSignal;
  clock: Clock;
  /** This controller's flag values, by name. */
  flags: Record<string, number>;
  /**
   * A primary object from the cache: the request's own with no argument, or the one with
   * `key` (`namespace/name`, or `name` when cluster-scoped).
   */
  get(key?: string): T | undefined;
  /** Every primary object in the cache, or those of one namespace. */
  list(namespace?: string): T[];
  /** The shared cache of any resource in `for`, `owns` or `watches`. */
  cache: CacheLookup;
  /** The manager's Prometheus registry (served on /metrics): register controller metrics here. */
  metrics: Registry;
  /**
   * Sets one condition on the object's status by server-side apply (status subresource),
   * with observedGeneration; keeps lastTransitionTime while the status does not change.
   * Returns false, writing nothing, when the condition is already so.
   */
  setCondition(
    obj: T,
    condition: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>,
  ): Promise<boolean>;
  /**
   * Adds a finalizer by JSON patch (no full-object update, no resourceVersion guard, so it
   * does not conflict with this reconcile's own earlier writes). When the object has no
   * finalizers yet the patch tests that the list is still absent. Returns false if it was there.
   */
  ensureFinalizer(obj: T, finalizer: string): Promise<boolean>;
  /** Removes a finalizer by JSON patch guarded by a test op. Returns false if it was not there. */
  removeFinalizer(obj: T, finalizer: string): Promise<boolean>;
  /**
   * A controller owner reference to `obj`, for objects this controller creates. apiVersion and
   * kind come from the object, or (as objects from lists and typed clients often lack them)
   * from `ref`, which defaults to the primary resource.
   */
  ownerReference(obj: KubeObject, ref?: ResourceRef): OwnerReference;
}

export interface ControllerSpec<T extends KubeObject = KubeObject> {
  /** KCM-style name, used by --controllers, metrics, logs, events and the field manager. */
  name: string;
  /** The primary resource: its objects' keys are what reconcile gets (typed: `resourceRef<Widget>(...)`). */
  for: ResourceRef<T>;
  /** Child resources: a change enqueues the child's controlling owner of the `for` kind. */
  owns?: ResourceRef[];
  /** Other resources, mapped to primary keys. */
  watches?: WatchSpec[];
  /** Filters on primary-object changes (all must pass); deletes always pass. */
  predicates?: Predicate<T>[];
  /** Indexes added to the primary informer's cache. */
  indexes?: Record<string, IndexFunc<T>>;
  /** Number of workers (default 1), or a flag that sets it. */
  workers?: number | WorkersFlag;
  /** Further numeric flags, e.g. thresholds. */
  flags?: ControllerFlag[];
  /** Drop a key after this many consecutive failures (default: retry forever). */
  maxRetries?: number;
  /** Default true. */
  enabledByDefault?: boolean;
  /** Other names --controllers accepts for this controller. */
  aliases?: string[];
  /** What it writes; reads (get/list/watch) come from for/owns/watches, events are added. */
  writes?: WriteRule[];
  /** CRD YAML files (absolute paths) it needs; the embedded control plane of `ts-kcm run` gets them. */
  crds?: string[];
  /**
   * How replicas of a sharding ring (`ts-kcm run --sharding-ring`) split the keys. 'key'
   * (default): by the primary object's namespace/name — safe when a reconcile writes only the
   * primary object and children it controls. 'namespace': one replica per namespace, for
   * reconciles that write objects shared between primaries of a namespace. A function maps a
   * key to the string hashed. false: the whole controller runs on one replica of the ring.
   * `{ by: 'namespace', primaryCache: 'owned' }`: by namespace, placed by the hash KEP-5866
   * apiservers compute, for reconciles that read only primary objects of their own namespace:
   * where the apiserver serves shardSelector, each replica lists and watches only its
   * namespaces' primary objects (ctx.get, ctx.list and ctx.cache(for) see those alone);
   * elsewhere (v1.35) it caches every one, as with 'namespace'. Namespaced `for` only.
   */
  sharding?: 'key' | 'namespace' | false | ((key: string) => string) | NamespaceShardSelection;
  reconcile(request: ReconcileRequest<T>, ctx: ReconcileContext<T>): Promise<ReconcileResult | void>;
}

/** Sharding by namespace with a primary cache of this replica's namespaces only (KEP-5866). */
export interface NamespaceShardSelection {
  by: 'namespace';
  primaryCache: 'owned';
}

/** The spec behind a defined controller, for ts-kcm/testing's reconcileOnce. */
export const CONTROLLER_SPEC = Symbol.for('ts-kcm.controllerSpec');

export type DefinedController<T extends KubeObject = KubeObject> = ControllerDefinition & {
  readonly [CONTROLLER_SPEC]: ControllerSpec<T>;
};

/** What an informer needs (a WatchList stream, or LIST then WATCH); reconcile reads the caches. */
const READ_VERBS = ['list', 'watch'];
/** The recorder writes core v1 Events: create, and patch for a repeat (never update). */
const EVENT_RULE: PolicyRule = { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] };

/** Least-privilege rules: reads of every watched resource, the declared writes, events. */
export function rulesOf(spec: Pick<ControllerSpec, 'for' | 'owns' | 'watches' | 'writes'>): PolicyRule[] {
  const byTarget = new Map<string, Set<string>>();
  const add = (group: string, resource: string, verbs: readonly string[]): void => {
    const k = `${group}\u0000${resource}`;
    const set = byTarget.get(k) ?? new Set<string>();
    for (const v of verbs) set.add(v);
    byTarget.set(k, set);
  };
  for (const ref of [spec.for, ...(spec.owns ?? []), ...(spec.watches ?? []).map((w) => w.resource)])
    add(ref.group, ref.resource, READ_VERBS);
  for (const w of spec.writes ?? []) {
    if (w.verbs.length === 0) throw new Error(`writes entry for ${w.resource.resource} names no verbs`);
    add(
      w.resource.group,
      w.subresource ? `${w.resource.resource}/${w.subresource}` : w.resource.resource,
      w.verbs,
    );
  }
  const rules: PolicyRule[] = [...byTarget.entries()]
    .map(([k, verbs]) => {
      const [group, resource] = k.split('\u0000') as [string, string];
      return { apiGroups: [group], resources: [resource], verbs: [...verbs].sort() };
    })
    .sort(
      (a, b) => byCodeUnit(a.apiGroups[0]!, b.apiGroups[0]!) || byCodeUnit(a.resources[0]!, b.resources[0]!),
    );
  return [...rules, EVENT_RULE];
}

/**
 * Code-unit order, not localeCompare: the names are lower-case DNS labels and paths, where both
 * orders agree, and the first localeCompare of a process builds an ICU collator (~8 ms of
 * start-up).
 */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Keys of the primary objects that `obj` (a child) is controlled by. */
export function controllingOwnerKeys(obj: KubeObject, primary: ResourceRef): string[] {
  const owner = obj.metadata.ownerReferences?.find(
    (r) =>
      r.controller === true &&
      r.kind === primary.kind &&
      r.apiVersion.split('/').length <= 2 &&
      groupOf(r.apiVersion) === primary.group,
  );
  if (!owner) return [];
  const ns = primary.namespaced ? obj.metadata.namespace : undefined;
  return [ns ? `${ns}/${owner.name}` : owner.name];
}

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

function keyOf(k: ObjectKey): string {
  return k.namespace ? `${k.namespace}/${k.name}` : k.name;
}

function splitKey(key: string): ObjectKey {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

function unwrap<T extends KubeObject>(obj: T | DeletedFinalStateUnknown<T>): T {
  return obj instanceof DeletedFinalStateUnknown ? obj.obj : obj;
}

export function defineController<T extends KubeObject = KubeObject>(
  spec: ControllerSpec<T>,
): DefinedController<T> {
  if (!DNS1123.test(spec.name) || spec.name.length > 63)
    throw new Error(`defineController: name "${spec.name}" is not a DNS-1123 label`);
  if (typeof spec.reconcile !== 'function')
    throw new Error(`defineController ${spec.name}: reconcile is missing`);
  if (typeof spec.sharding === 'object' && !spec.for.namespaced)
    throw new Error(`defineController ${spec.name}: sharding by namespace needs a namespaced \`for\``);
  const workers = spec.workers ?? 1;
  const workersFlag: ControllerFlag[] =
    typeof workers === 'number'
      ? []
      : [
          {
            name: workers.flag,
            description:
              workers.description ??
              `The number of ${spec.for.kind} objects that are allowed to sync concurrently.`,
            defaultValue: workers.default,
          },
        ];
  const def: ControllerDefinition = {
    name: spec.name,
    enabledByDefault: spec.enabledByDefault ?? true,
    ...(spec.aliases ? { aliases: spec.aliases } : {}),
    ...(spec.crds ? { crds: spec.crds } : {}),
    flags: [...workersFlag, ...(spec.flags ?? [])],
    rbac: rulesOf(spec),
    sharding: shardingOf(spec),
    create: (ctx) => build(spec, ctx, workers),
  };
  return Object.assign(def, { [CONTROLLER_SPEC]: spec }) as DefinedController<T>;
}

function shardingOf(spec: Pick<ControllerSpec, 'sharding'>): ShardingDeclaration {
  const s = spec.sharding ?? 'key';
  if (s === false) return { shardable: false, reason: 'declared not shardable' };
  if (s === 'key') return { shardable: true, reason: 'by the primary object key' };
  if (s === 'namespace') return { shardable: true, shardKey: namespaceShardKey, reason: 'by namespace' };
  if (typeof s === 'object')
    return {
      shardable: true,
      shardKey: namespaceShardKey,
      shardField: 'object.metadata.namespace',
      primaryCache: 'owned',
      reason: 'by namespace; the primary cache holds this replica’s namespaces (KEP-5866 shardSelector)',
    };
  return { shardable: true, shardKey: s, reason: 'by a custom shard key' };
}

function build<T extends KubeObject>(
  spec: ControllerSpec<T>,
  ctx: ControllerContext,
  workers: number | WorkersFlag,
): Controller {
  const logger = ctx.logger.child({ controller: spec.name });
  const shard = ctx.sharding?.primaryShard;
  const primary = ctx.informers.informerFor<T>(spec.for, shard ? { shard } : {});
  const queue = shardedQueue(
    newRateLimitingQueue<string>({
      name: spec.name,
      clock: ctx.clock,
      rateLimiter: defaultControllerRateLimiter(ctx.clock),
      registry: ctx.metrics,
    }),
    ctx.sharding,
    { controller: spec.name, keys: () => primary.getIndexer().listKeys(), registry: ctx.metrics },
  );
  if (spec.indexes) primary.addIndexers(spec.indexes);
  const predicates = spec.predicates ?? [];
  const passes = (oldObj: T | undefined, obj: T): boolean => predicates.every((p) => p(oldObj, obj));
  primary.addEventHandler({
    onAdd: (obj) => passes(undefined, obj) && queue.add(metaNamespaceKey(obj)),
    onUpdate: (oldObj, obj) => passes(oldObj, obj) && queue.add(metaNamespaceKey(obj)),
    onDelete: (obj) => queue.add(metaNamespaceKey(unwrap(obj))),
  });
  const enqueueAll = (keys: string[]): void => keys.forEach((k) => queue.add(k));
  const cache = cacheLookup(spec, ctx, primary);
  for (const ref of spec.owns ?? []) {
    const inf: SharedIndexInformer = ctx.informers.informerFor(ref);
    inf.addEventHandler({
      onAdd: (obj) => enqueueAll(controllingOwnerKeys(obj, spec.for)),
      onUpdate: (oldObj, obj) =>
        enqueueAll([
          ...new Set([...controllingOwnerKeys(oldObj, spec.for), ...controllingOwnerKeys(obj, spec.for)]),
        ]),
      onDelete: (obj) => enqueueAll(controllingOwnerKeys(unwrap(obj), spec.for)),
    });
  }
  for (const w of spec.watches ?? []) {
    const inf: SharedIndexInformer = ctx.informers.informerFor(w.resource);
    const map = (obj: KubeObject): string[] => w.map(obj, cache).map(keyOf);
    inf.addEventHandler({
      onAdd: (obj) => enqueueAll(map(obj)),
      onUpdate: (oldObj, obj) => enqueueAll([...new Set([...map(oldObj), ...map(obj)])]),
      onDelete: (obj) => enqueueAll(map(unwrap(obj))),
    });
  }
  const recorder = ctx.eventRecorder(spec.name);
  const indexer = primary.getIndexer();
  const reconciler = {
    reconcile: (key: string, signal?: AbortSignal) =>
      reconcileKey(spec, key, {
        client: ctx.client,
        recorder,
        logger,
        // Also aborts when the key moves to another replica of the sharding ring.
        signal: anySignal(signal, queue.keySignal(key)),
        clock: ctx.clock,
        flags: ctx.flags,
        get: (k) => indexer.get(k),
        list: (namespace) =>
          namespace === undefined ? indexer.list() : indexer.byIndex(NAMESPACE_INDEX, namespace),
        cache,
        metrics: ctx.metrics,
      }),
  };
  return new Controller({
    name: spec.name,
    queue,
    reconciler,
    workers: typeof workers === 'number' ? workers : (ctx.flags[workers.flag] ?? workers.default),
    ...(spec.maxRetries !== undefined ? { maxRetries: spec.maxRetries } : {}),
    logger,
    registry: ctx.metrics,
    clock: ctx.clock,
  });
}

/** Caches of the declared resources only: informers are built (and RBAC granted) for those alone. */
function cacheLookup<T extends KubeObject>(
  spec: ControllerSpec<T>,
  ctx: ControllerContext,
  primary: SharedIndexInformer<T>,
): CacheLookup {
  const declared = new Map<string, ResourceRef>();
  for (const ref of [spec.for, ...(spec.owns ?? []), ...(spec.watches ?? []).map((w) => w.resource)])
    declared.set(`${ref.group}/${ref.resource}`, ref);
  return <U extends KubeObject>(resource: ResourceRef): CacheReader<U> => {
    const ref = declared.get(`${resource.group}/${resource.resource}`);
    if (!ref)
      throw new Error(
        `${spec.name}: cache(${resource.resource}): only resources in for, owns or watches have a cache`,
      );
    // The primary informer may be this replica's share (primaryCache 'owned'), not the full one.
    if (ref === spec.for || (ref.group === spec.for.group && ref.resource === spec.for.resource))
      return primary.getIndexer() as unknown as CacheReader<U>;
    return ctx.informers.informerFor<U>(ref).getIndexer();
  };
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 0) return new AbortController().signal;
  return present.length === 1 ? present[0]! : AbortSignal.any(present);
}

/** The base a reconcile context is built from (also by ts-kcm/testing's reconcileOnce). */
export type ContextBase<T extends KubeObject> = Pick<
  ReconcileContext<T>,
  'client' | 'recorder' | 'logger' | 'signal' | 'clock' | 'flags' | 'list' | 'cache' | 'metrics'
> & {
  /** The cached primary object with `key`. */
  get(key: string): T | undefined;
};

/** Runs spec.reconcile for one key with the helpers bound. */
export function reconcileKey<T extends KubeObject>(
  spec: ControllerSpec<T>,
  key: string,
  base: ContextBase<T>,
): Promise<ReconcileResult | void> {
  const ctx = reconcileContext(spec, { ...base, get: (k?: string) => base.get(k ?? key) });
  return spec.reconcile({ ...splitKey(key), key, object: base.get(key) }, ctx);
}

export function reconcileContext<T extends KubeObject>(
  spec: Pick<ControllerSpec<T>, 'name' | 'for'>,
  base: Omit<ContextBase<T>, 'get'> & Pick<ReconcileContext<T>, 'get'>,
): ReconcileContext<T> {
  const rc = base.client.resource<T>(spec.for);
  const ns = (obj: KubeObject) => (spec.for.namespaced ? obj.metadata.namespace : undefined);
  return {
    ...base,
    async setCondition(obj, condition) {
      const existing = (obj as { status?: { conditions?: Condition[] } }).status?.conditions ?? [];
      const old = existing.find((c) => c.type === condition.type);
      const generation = obj.metadata.generation;
      if (
        old &&
        old.status === condition.status &&
        old.reason === condition.reason &&
        old.message === condition.message &&
        old.observedGeneration === generation
      )
        return false;
      const next: Condition = {
        ...condition,
        lastTransitionTime:
          old && old.status === condition.status && old.lastTransitionTime
            ? old.lastTransitionTime
            : formatTime(base.clock.now()),
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      };
      const conditions = [...existing.filter((c) => c.type !== condition.type), next];
      await rc.patch(
        obj.metadata.name ?? '',
        {
          apiVersion: apiVersionOf(spec.for),
          kind: spec.for.kind,
          metadata: { name: obj.metadata.name, ...(ns(obj) ? { namespace: ns(obj) } : {}) },
          status: { conditions },
        },
        {
          type: 'apply',
          subresource: 'status',
          fieldManager: spec.name,
          force: true,
          ...(ns(obj) ? { namespace: ns(obj) } : {}),
          signal: base.signal,
        },
      );
      return true;
    },
    async ensureFinalizer(obj, finalizer) {
      const current = obj.metadata.finalizers;
      if (current?.includes(finalizer)) return false;
      const ops = current
        ? [{ op: 'add', path: '/metadata/finalizers/-', value: finalizer }]
        : [
            // Nobody else may have added the list meanwhile: guard by its absence (null), not by
            // resourceVersion, which our own status write a moment ago has already moved on.
            { op: 'test', path: '/metadata/finalizers', value: null },
            { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
          ];
      const opts = {
        type: 'json' as const,
        fieldManager: spec.name,
        ...(ns(obj) ? { namespace: ns(obj) } : {}),
        signal: base.signal,
      };
      try {
        await rc.patch(obj.metadata.name ?? '', ops, opts);
      } catch (err) {
        // 422 on the guard: the list exists by now and `obj` (a cache copy) is behind, e.g.
        // our own earlier add has not reached the cache yet. Decide on the live object.
        if (current || !isInvalid(err)) throw err;
        const live = await rc.get(obj.metadata.name ?? '', ns(obj), { signal: base.signal });
        if (live.metadata.finalizers?.includes(finalizer)) return false;
        await rc.patch(
          obj.metadata.name ?? '',
          live.metadata.finalizers ? [{ op: 'add', path: '/metadata/finalizers/-', value: finalizer }] : ops,
          opts,
        );
      }
      return true;
    },
    async removeFinalizer(obj, finalizer) {
      const i = obj.metadata.finalizers?.indexOf(finalizer) ?? -1;
      if (i < 0) return false;
      await rc.patch(
        obj.metadata.name ?? '',
        [
          { op: 'test', path: `/metadata/finalizers/${i}`, value: finalizer },
          { op: 'remove', path: `/metadata/finalizers/${i}` },
        ],
        {
          type: 'json',
          fieldManager: spec.name,
          ...(ns(obj) ? { namespace: ns(obj) } : {}),
          signal: base.signal,
        },
      );
      return true;
    },
    ownerReference(obj, ref = spec.for) {
      if (!obj.metadata.uid || !obj.metadata.name)
        throw new Error(
          'ownerReference: the owner has no uid or name yet (use the object the apiserver returned)',
        );
      return {
        apiVersion: obj.apiVersion || apiVersionOf(ref),
        kind: obj.kind || ref.kind,
        name: obj.metadata.name,
        uid: obj.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      };
    },
  };
}
