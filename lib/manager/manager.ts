import type { Registry } from 'prom-client';
import type { KubeClient } from '../client/types.js';
import { RealClock, type Clock } from '../clock/index.js';
import type { ControllerContext, ControllerDefinition, Runnable } from '../controller/types.js';
import { EventBroadcaster, type EventRecorder } from '../events/index.js';
import {
  DEFAULT_MIN_RESYNC_PERIOD_MS,
  DefaultSharedInformerFactory,
  type SharedInformerFactory,
} from '../informer/index.js';
import { LeaderElector, newIdentity } from '../leaderelection/index.js';
import { controllerSharding, ShardMembership } from '../sharding/index.js';
import { errorMessage, type Logger } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import { parseBindAddress } from './address.js';
import { resolveControllers } from './controllers.js';
import { HealthChecks, ping, type HealthCheck } from './healthz.js';
import { HttpEndpoint } from './server.js';

/** The manager's knobs; every default is kube-controller-manager's (or controller-runtime's for the servers). */
export interface ManagerOptions {
  /** --controllers entries: `*`, `foo`, `-foo`. */
  controllers: string[];
  leaderElect: boolean;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  leaseName: string;
  leaseNamespace: string;
  /** "host:port", ":port" or "0" (off). */
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  /** How long in-flight reconciles may take to finish after SIGTERM. */
  shutdownTimeoutMs: number;
  /** Controller-specific flag values by flag name (e.g. concurrent-service-cidr-syncs). */
  controllerFlags: Record<string, number>;
  /** --min-resync-period for the informer factory; default 12 h (0: no resync). */
  minResyncPeriodMs?: number;
  /**
   * --sharding-ring: every replica works, each on the keys it owns on this ring (lib/sharding);
   * the Leases use the leader-election namespace and timings. Leader election is then off.
   */
  shardingRing?: string;
}

export const DEFAULT_MANAGER_OPTIONS: ManagerOptions = {
  controllers: ['*'],
  leaderElect: true,
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
  leaseName: 'ts-kcm',
  leaseNamespace: 'kube-system',
  metricsBindAddress: ':8080',
  healthProbeBindAddress: ':8081',
  shutdownTimeoutMs: 30_000,
  controllerFlags: {},
};

export interface ManagerDeps {
  client: KubeClient;
  /**
   * The Lease's client. Give it its own (own throttle), as kube-controller-manager does, so
   * busy controllers queueing behind --kube-api-qps cannot delay renewals past the renew
   * deadline. Default: `client`.
   */
  leaderElectionClient?: KubeClient;
  definitions: ControllerDefinition[];
  logger: Logger;
  /** Default: a fresh registry with process metrics. Pass the one the client records into. */
  registry?: Registry;
  clock?: Clock;
  /** Default `<hostname>_<uuid>`. */
  identity?: string;
  informerFactory?: (client: KubeClient) => SharedInformerFactory;
}

/** client-go's HealthzAdaptor tolerance: a leader may be this late renewing before /healthz fails. */
const LEADER_HEALTH_TOLERANCE_MS = 20_000;

/**
 * Runs the enabled controllers the way kube-controller-manager does: serve probes and
 * metrics, win the Lease, build every controller, start the shared informers once, wait for
 * their caches, then run the controllers until SIGTERM (drain, release the lease, exit 0) or
 * until leadership is lost (stop at once, exit 1).
 */
export class Manager {
  readonly identity: string;
  /** Bound addresses once run() has started the servers. */
  metricsAddress?: string;
  healthAddress?: string;

  private readonly opts: ManagerOptions;
  private readonly deps: ManagerDeps;
  private readonly enabled: ControllerDefinition[];
  private readonly registry: Registry;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly broadcaster: EventBroadcaster;
  private readonly recorders = new Map<string, EventRecorder>();
  private elector?: LeaderElector;
  private membership?: ShardMembership;
  private work?: AbortController;
  private starting?: Promise<void>;
  private running: Promise<void>[] = [];
  private cachesSynced = false;
  private controllersStarted = false;
  private shuttingDown = false;
  private failure?: string;
  private readonly stop = new AbortController();

  /** Throws on an unknown controller name or a malformed bind address. */
  constructor(options: Partial<ManagerOptions>, deps: ManagerDeps) {
    this.opts = { ...DEFAULT_MANAGER_OPTIONS, ...options };
    this.deps = deps;
    this.enabled = resolveControllers(deps.definitions, this.opts.controllers);
    parseBindAddress(this.opts.metricsBindAddress);
    parseBindAddress(this.opts.healthProbeBindAddress);
    this.registry = deps.registry ?? newRegistry({ processMetrics: true });
    this.clock = deps.clock ?? new RealClock();
    this.logger = deps.logger;
    this.identity = deps.identity ?? newIdentity();
    this.broadcaster = new EventBroadcaster({
      client: deps.client,
      clock: this.clock,
      logger: this.logger,
      registry: this.registry,
    });
  }

  /** Names of the controllers --controllers turned on. */
  enabledControllers(): string[] {
    return this.enabled.map((d) => d.name);
  }

  /** Runs until `signal` aborts (exit code 0) or leadership is lost / a controller fails to start (1). */
  async run(signal: AbortSignal): Promise<number> {
    const { logger } = this;
    if (signal.aborted) return 0;
    const onSignal = () => this.stop.abort();
    signal.addEventListener('abort', onSignal, { once: true });
    const servers = await this.startServers().catch((err: unknown) => {
      this.fail(`cannot serve: ${errorMessage(err)}`);
      return [] as HttpEndpoint[];
    });
    try {
      if (this.failure) return 1;
      logger.info('starting controller manager', {
        identity: this.identity,
        controllers: this.enabledControllers(),
      });
      let electing: Promise<void> | undefined;
      const electorStop = new AbortController();
      if (this.opts.shardingRing) {
        if (this.opts.leaderElect)
          logger.info('--sharding-ring is set: every replica works on its share, --leader-elect is ignored', {
            ring: this.opts.shardingRing,
          });
        this.membership = this.newMembership(this.opts.shardingRing);
        electing = this.membership.run(electorStop.signal);
        this.startControllers(this.stop.signal);
      } else if (this.opts.leaderElect) {
        this.elector = this.newElector();
        electing = this.elector.run(electorStop.signal);
      } else {
        this.startControllers(this.stop.signal);
      }
      await aborted(this.stop.signal);
      this.shuttingDown = true;
      // After a lost lease another replica may already be working: stop now, do not drain.
      await this.stopControllers(this.failure ? 0 : this.opts.shutdownTimeoutMs);
      await this.broadcaster.shutdown();
      // Only now give up the lease: the successor must not start while our reconciles still run.
      electorStop.abort();
      await electing;
      return this.failure ? 1 : 0;
    } finally {
      signal.removeEventListener('abort', onSignal);
      await Promise.all(servers.map((s) => s.close()));
      if (!this.failure) logger.info('controller manager stopped');
    }
  }

  /** Log why we stop, and stop: the exit code will be 1. */
  private fail(reason: string): void {
    this.logger.error(reason);
    this.failure ??= reason;
    this.stop.abort();
  }

  private newElector(): LeaderElector {
    const o = this.opts;
    return new LeaderElector({
      client: this.deps.leaderElectionClient ?? this.deps.client,
      namespace: o.leaseNamespace,
      name: o.leaseName,
      identity: this.identity,
      leaseDurationMs: o.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
      releaseOnCancel: true,
      clock: this.clock,
      logger: this.logger,
      registry: this.registry,
      callbacks: {
        onStartedLeading: (leading) => this.startControllers(leading),
        onStoppedLeading: () => {
          if (this.shuttingDown) return;
          // kube-controller-manager exits here too: a process that lost its lease cannot know
          // what its successor has done, so it must not continue with stale state.
          this.fail('leaderelection lost');
        },
      },
    });
  }

  private newMembership(ring: string): ShardMembership {
    const o = this.opts;
    return new ShardMembership({
      client: this.deps.leaderElectionClient ?? this.deps.client,
      namespace: o.leaseNamespace,
      ring,
      identity: this.identity,
      leaseDurationMs: o.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
      clock: this.clock,
      logger: this.logger,
      registry: this.registry,
    });
  }

  /** Build every controller, start informers once, wait for caches, then run the controllers. */
  private startControllers(leading: AbortSignal): void {
    const work = new AbortController();
    this.work = work;
    const onLeadingEnd = () => work.abort(leading.reason);
    if (leading.aborted) return;
    leading.addEventListener('abort', onLeadingEnd, { once: true });
    this.starting = this.buildAndRun(work.signal).catch((err: unknown) => {
      this.fail(`error starting controllers: ${errorMessage(err)}`);
    });
  }

  private async buildAndRun(signal: AbortSignal): Promise<void> {
    const { logger } = this;
    const informers = (this.deps.informerFactory ?? this.defaultFactory)(this.deps.client);
    const runnables: { name: string; runnable: Runnable }[] = [];
    for (const def of this.enabled) {
      try {
        runnables.push({ name: def.name, runnable: def.create(this.contextFor(def, informers)) });
      } catch (err) {
        throw new Error(`${def.name}: ${errorMessage(err)}`, { cause: err });
      }
    }
    informers.start(signal);
    if (!(await informers.waitForCacheSync(signal))) return;
    this.cachesSynced = true;
    logger.info('caches synced', { controllers: runnables.map((r) => r.name) });
    for (const { name, runnable } of runnables) {
      logger.info('started controller', { controller: name });
      this.running.push(
        runnable.run(signal).then(
          () => logger.info('controller stopped', { controller: name }),
          (err: unknown) => logger.error('controller failed', { controller: name, err: errorMessage(err) }),
        ),
      );
    }
    this.controllersStarted = true;
  }

  private readonly defaultFactory = (client: KubeClient): SharedInformerFactory =>
    new DefaultSharedInformerFactory(client, {
      logger: this.logger,
      registry: this.registry,
      clock: this.clock,
      minResyncPeriodMs: this.opts.minResyncPeriodMs ?? DEFAULT_MIN_RESYNC_PERIOD_MS,
    });

  private contextFor(def: ControllerDefinition, informers: SharedInformerFactory): ControllerContext {
    const flags: Record<string, number> = {};
    for (const f of def.flags) flags[f.name] = this.opts.controllerFlags[f.name] ?? f.defaultValue;
    return {
      client: this.deps.client,
      informers,
      eventRecorder: (component) => this.recorderFor(component),
      logger: this.logger.child({ controller: def.name }),
      metrics: this.registry,
      clock: this.clock,
      flags,
      ...(this.membership ? { sharding: controllerSharding(this.membership, def) } : {}),
    };
  }

  private recorderFor(component: string): EventRecorder {
    let r = this.recorders.get(component);
    if (!r) {
      r = this.broadcaster.newCoreRecorder(component);
      this.recorders.set(component, r);
    }
    return r;
  }

  /** Abort the controllers and wait (up to `timeoutMs`) for their in-flight work. */
  private async stopControllers(timeoutMs: number): Promise<void> {
    this.work?.abort(new Error('shutting down'));
    const done = (async () => {
      await this.starting;
      await Promise.all(this.running);
    })();
    let timer: { cancel(): void } | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((r) => (timer = this.clock.setTimer(timeoutMs, () => r(true)))),
    ]);
    timer?.cancel();
    if (timedOut && timeoutMs > 0) {
      this.logger.warn('controllers did not finish within the shutdown timeout', {
        shutdownTimeoutMs: timeoutMs,
      });
    }
  }

  private async startServers(): Promise<HttpEndpoint[]> {
    const servers: HttpEndpoint[] = [];
    const metricsBind = parseBindAddress(this.opts.metricsBindAddress);
    if (metricsBind) {
      const s = new HttpEndpoint(async (req, res) => {
        if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/metrics') return false;
        const body = await this.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.registry.contentType });
        res.end(body);
        return true;
      });
      this.metricsAddress = await s.listen(metricsBind);
      servers.push(s);
      this.logger.info('serving metrics', { address: this.metricsAddress });
    }
    const healthBind = parseBindAddress(this.opts.healthProbeBindAddress);
    if (healthBind) {
      const checks = this.healthChecks();
      const s = new HttpEndpoint((req, res) => checks.handle(req, res));
      try {
        this.healthAddress = await s.listen(healthBind);
      } catch (err) {
        await Promise.all(servers.map((x) => x.close()));
        throw err;
      }
      servers.push(s);
      this.logger.info('serving health probes', { address: this.healthAddress });
    }
    return servers;
  }

  private healthChecks(): HealthChecks {
    const leaderElection: HealthCheck = {
      name: 'leaderElection',
      check: () => this.elector?.check(LEADER_HEALTH_TOLERANCE_MS),
    };
    // A standby (leader election on, not leading) is Ready: it is healthy and waiting for the
    // Lease, as kube-controller-manager's and controller-runtime's standbys are, so a
    // two-replica Deployment can become Available and roll. Once it leads, readiness includes
    // informer sync and started controllers. leader_election_master_status tells which is which.
    const standby = (): boolean =>
      this.opts.leaderElect && !this.opts.shardingRing && this.work === undefined;
    const informerSync: HealthCheck = {
      name: 'informer-sync',
      check: () => (standby() || this.cachesSynced ? undefined : new Error('informer caches not synced')),
    };
    const controllers: HealthCheck = {
      name: 'controllers-started',
      check: () => (standby() || this.controllersStarted ? undefined : new Error('controllers not started')),
    };
    const shutdown: HealthCheck = {
      name: 'shutdown',
      check: () => (this.shuttingDown ? new Error('process is shutting down') : undefined),
    };
    // /readyz?verbose names the ring, its members and where this replica stands; always passes
    // (a replica warming up is ready: it serves its share once the warm-up ends).
    const ring: HealthCheck[] = this.opts.shardingRing
      ? [{ name: 'shard-ring', check: () => undefined, detail: () => this.membership?.describe() ?? '' }]
      : [];
    const live = [ping, leaderElection];
    return new HealthChecks(
      {
        healthz: live,
        livez: live,
        readyz: [ping, leaderElection, informerSync, controllers, ...ring, shutdown],
      },
      this.logger,
    );
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
