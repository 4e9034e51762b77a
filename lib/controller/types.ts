import type { Registry } from 'prom-client';
import type { KubeClient, ShardField } from '../client/types.js';
import type { Clock } from '../clock/index.js';
import type { InformerShard, SharedInformerFactory } from '../informer/types.js';
import type { EventRecorder } from '../events/types.js';
import type { Logger } from '../log/index.js';

/** What a reconcile asks for next. Throwing instead means: retry with rate-limited backoff. */
export interface ReconcileResult {
  /** Re-queue the key after this many milliseconds (through addAfter, no backoff). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  /**
   * `signal` aborts when the Lease is lost or the shutdown budget (--shutdown-timeout) is
   * spent: pass it to every client call, so the request is cancelled and nothing is written
   * after that.
   */
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void>;
}

/** An RBAC PolicyRule, as the manifests need it. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * A controller-specific flag, e.g. --concurrent-service-cidr-syncs. Its value is always a
 * number in `flags`: a count for `number` (the default), 1 or 0 for `boolean`
 * (`--foo`, `--foo=true|false`), milliseconds for `duration` (a Go duration: `10s`, `1m30s`).
 */
export interface ControllerFlag {
  name: string; // without dashes
  description: string;
  defaultValue: number;
  type?: 'number' | 'boolean' | 'duration';
}

/** Everything the manager hands a controller when it builds it. */
export interface ControllerContext {
  client: KubeClient;
  informers: SharedInformerFactory;
  /** Events recorder for a reporting component name (e.g. 'service-cidr-controller'). */
  eventRecorder(component: string): EventRecorder;
  logger: Logger;
  metrics: Registry;
  clock: Clock;
  /** Values of this controller's own flags, by flag name. */
  flags: Record<string, number>;
  /** Set only when the manager runs with a sharding ring: wrap the queue with lib/sharding's shardedQueue. */
  sharding?: ControllerSharding;
}

/**
 * How a controller's keys may be split over a sharding ring (`ts-kcm run --sharding-ring`).
 * Shardable: each replica reconciles only the keys whose shard key it owns; keys with the
 * same shard key always land on the same replica. Every replica still caches everything the
 * controller reads, so a decision needing a global view is the same wherever it is made.
 * Not shardable (or undeclared, as older plugins): the whole controller runs on exactly one
 * replica, the owner of `controller/<name>` on the ring.
 */
export type ShardingDeclaration =
  | {
      shardable: true;
      /**
       * The string hashed onto the ring for a queue key. Default: the key itself (with
       * shardField 'object.metadata.namespace': the key's namespace, namespaceShardKey).
       */
      shardKey?(key: string): string;
      /** Why splitting is safe, for docs and reviewers. */
      reason?: string;
      /**
       * KEP-5866: shardKey(key) is this field's value on the key's primary object (its
       * namespace, or its uid: then shardKey is required and must read it from the key), and
       * keys sit on the ring at raw fnv1a64(shardKey(key)), the hash the apiserver computes,
       * instead of the ring's mixed hash. Only then can an apiserver select a replica's share.
       */
      shardField?: ShardField;
      /**
       * 'owned' (needs shardField): the controller reads only the primary objects whose keys
       * this replica owns, so its primary informer may hold just that share. With a ring,
       * ctx.sharding.primaryShard is set; pass it as `informerFor(primary, { shard })`.
       * Default 'full': every replica caches every primary object.
       */
      primaryCache?: 'full' | 'owned';
    }
  | { shardable: false; reason: string };

/** What a sharded manager hands each controller: which of its keys this replica may work on. */
export interface ControllerSharding {
  /** True while this replica owns `key` (a queue key) and may reconcile it. */
  owns(key: string): boolean;
  /** A frozen copy of owns() as of now, to tell newly owned keys from old ones after a change. */
  snapshot(): (key: string) => boolean;
  /** Called on every ownership change; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /**
   * Set when the declaration has primaryCache 'owned': the primary informer's KEP-5866 share
   * (`informerFor(primary, { shard: primaryShard })`). owns() is then true only for keys the
   * primary cache already covers, so a newly owned key waits until its object is cached.
   */
  primaryShard?: InformerShard;
}

/**
 * A work queue that can say when a key in flight has moved to another replica of a sharding
 * ring (lib/sharding's shardedQueue): the key's signal aborts then. undefined: no ring, or the
 * key is not in flight.
 */
export interface KeySignals {
  keySignal(key: string): AbortSignal | undefined;
}

/** A running controller. */
export interface Runnable {
  /**
   * Start workers. When `stop` aborts: take no new work, and resolve once in-flight work has
   * finished. `cancel` aborts in-flight work (lost Lease, shutdown budget spent): it is the
   * signal reconciles get.
   */
  run(stop: AbortSignal, cancel?: AbortSignal): Promise<void>;
}

/** A controller plug-in: registered once, built by the manager when enabled. */
export interface ControllerDefinition {
  /** KCM-style name, used by --controllers. */
  name: string;
  /** Other names --controllers accepts for it, as KCM's controller aliases. */
  aliases?: string[];
  enabledByDefault: boolean;
  flags: ControllerFlag[];
  /** The RBAC rules this controller needs, and nothing more. manifests/ is generated from these. */
  rbac: PolicyRule[];
  /**
   * CRD YAML files (absolute paths) of custom resources it needs. `ts-kcm run` installs them
   * into the embedded control plane it starts; on a cluster of yours, apply them yourself.
   */
  crds?: string[];
  /** Absent: not shardable (runs on one replica of a ring). */
  sharding?: ShardingDeclaration;
  create(ctx: ControllerContext): Runnable;
}
