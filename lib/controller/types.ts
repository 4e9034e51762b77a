import type { Registry } from 'prom-client';
import type { KubeClient } from '../client/types.js';
import type { Clock } from '../clock/index.js';
import type { SharedInformerFactory } from '../informer/types.js';
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

/** A controller-specific numeric flag, e.g. --concurrent-service-cidr-syncs. */
export interface ControllerFlag {
  name: string; // without dashes
  description: string;
  defaultValue: number;
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
  create(ctx: ControllerContext): Runnable;
}
