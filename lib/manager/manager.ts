import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { fencedClient } from '../client/fence.js';
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
import { watchListClientEnabled } from './features.js';
import { resolveControllers } from './controllers.js';
import { CacheSyncGate, ControllerInformers } from './cachesync.js';
import { HealthChecks, ping, type HealthCheck } from './healthz.js';
import { MemorySettler } from './settle.js';
import { EventLoopWatchdog } from './watchdog.js';
import { HttpEndpoint, type TlsMaterial } from './server.js';
import { DelegatedAuth } from './delegated-auth.js';
import { issueCertificate } from '../pki/x509.js';

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
  /**
   * Serve /metrics over HTTPS, authenticating each scrape with a TokenReview and authorizing
   * it with a SubjectAccessReview (get on the non-resource path /metrics), as
   * kube-controller-manager's secure port does. Off by default (plain HTTP for local use).
   */
  metricsSecure?: boolean;
  /** tls.crt and tls.key for the secure metrics endpoint; absent: a self-signed certificate. */
  metricsCertDir?: string;
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
  /**
   * Once the process has gone quiet after start-up (a 5 s interval with the event loop
   * under 5 % busy), run one full, memory-reducing collection, so an idle manager hands back
   * what start-up used (lib/manager/settle.ts). Default true.
   */
  settleMemory?: boolean;
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
  /**
   * Each controller's own client (--use-service-account-credentials: its ServiceAccount's
   * token), for its reads and writes. Informers and events keep `client`. Default: `client`.
   */
  controllerClient?: (controller: string) => KubeClient;
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
  private watchdog?: EventLoopWatchdog;
  private settler?: MemorySettler;
  private membership?: ShardMembership;
  private work?: AbortController;
  private starting?: Promise<void>;
  private running: Promise<void>[] = [];
  /** One per enabled controller once they are built (leader only). */
  private gates?: CacheSyncGate[];
  private shuttingDown = false;
  private failure?: string;
  private readonly stop = new AbortController();
  /**
   * The fence: aborts when the Lease is lost (or the start failed) and when the shutdown
   * budget is spent. It is every reconcile's signal, and the controllers and the event sink
   * write through a client fenced by it, so once it aborts requests in flight are cancelled
   * and nothing more is written — also by code that forgot to pass its signal.
   */
  private readonly fence = new AbortController();
  private readonly fencedClient: KubeClient;

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
    this.fencedClient = fencedClient(deps.client, this.fence.signal);
    this.broadcaster = new EventBroadcaster({
      client: this.fencedClient,
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
    // Until it is stopped, a manager keeps its process alive on purpose. Otherwise only
    // incidental handles do (an open watch, a pending sleep, the probe servers), and a moment
    // without any (every request waiting on an unref'd timer, no server, no elector) would end
    // the process silently in the middle of its work.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
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
      if (this.opts.settleMemory ?? true) {
        this.settler = new MemorySettler({ clock: this.clock, logger });
        this.settler.start();
      }
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
      if (this.failure) {
        // After a lost lease another replica may already be working: no drain, no further
        // write. Cancel every request in flight, drop queued events, exit non-zero now, as
        // kube-controller-manager does.
        this.fence.abort(new Error(`stopping at once: ${this.failure}`));
        this.work?.abort(this.fence.signal.reason);
        this.broadcaster.abandon();
        electorStop.abort();
        await electing;
        return 1;
      }
      await this.drain(this.opts.shutdownTimeoutMs);
      await this.broadcaster.shutdown();
      // Only now give up the lease: every worker has stopped, so the successor cannot start
      // while one of our reconciles still runs.
      electorStop.abort();
      await electing;
      return 0;
    } finally {
      signal.removeEventListener('abort', onSignal);
      clearInterval(keepAlive);
      this.watchdog?.stop();
      this.settler?.stop();
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
    const built: { name: string; runnable: Runnable; gate: CacheSyncGate }[] = [];
    for (const def of this.enabled) {
      // Informers stay shared; the view only records which ones this controller waits for.
      const own = new ControllerInformers(informers, this.clock);
      let runnable: Runnable;
      try {
        runnable = def.create(this.contextFor(def, own));
      } catch (err) {
        throw new Error(`${def.name}: ${errorMessage(err)}`, { cause: err });
      }
      const gate = new CacheSyncGate(def.name, own.used, { clock: this.clock, logger });
      built.push({ name: def.name, runnable, gate });
    }
    this.gates = built.map((b) => b.gate);
    informers.start(signal);
    // Each controller starts as soon as its own caches have synced (WaitForNamedCacheSync),
    // not when every informer of every controller has.
    const waits = built.map(({ gate }) => gate.wait(signal));
    void Promise.all(waits).then((synced) => {
      if (synced.every(Boolean)) logger.info('caches synced', { controllers: built.map((b) => b.name) });
    });
    for (const [i, { name, runnable }] of built.entries()) {
      this.running.push(
        waits[i]!.then(async (synced) => {
          if (!synced) return;
          logger.info('started controller', { controller: name });
          try {
            await runnable.run(signal, this.fence.signal);
            logger.info('controller stopped', { controller: name });
          } catch (err) {
            logger.error('controller failed', { controller: name, err: errorMessage(err) });
          }
        }),
      );
    }
  }

  private readonly defaultFactory = (client: KubeClient): SharedInformerFactory =>
    new DefaultSharedInformerFactory(client, {
      logger: this.logger,
      registry: this.registry,
      clock: this.clock,
      minResyncPeriodMs: this.opts.minResyncPeriodMs ?? DEFAULT_MIN_RESYNC_PERIOD_MS,
      // KUBE_FEATURE_WatchListClient=false: paginated LIST from the start, as client-go.
      informerDefaults: { reflector: { useWatchList: watchListClientEnabled() } },
    });

  private contextFor(def: ControllerDefinition, informers: SharedInformerFactory): ControllerContext {
    const flags: Record<string, number> = {};
    for (const f of def.flags) flags[f.name] = this.opts.controllerFlags[f.name] ?? f.defaultValue;
    return {
      // A controller's own client (--use-service-account-credentials) is fenced the same way.
      client: this.deps.controllerClient
        ? fencedClient(this.deps.controllerClient(def.name), this.fence.signal)
        : this.fencedClient,
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

  /**
   * The one drain budget (--shutdown-timeout): stop handing out keys, wait for every worker to
   * stop. When the budget is spent, the fence aborts the stragglers' signals (their requests
   * are cancelled, nothing more is written) and we keep waiting until they have returned:
   * the Lease is released only after that, never while a reconcile may still run.
   */
  private async drain(budgetMs: number): Promise<void> {
    this.work?.abort(new Error('shutting down'));
    const done = (async () => {
      await this.starting;
      await Promise.all(this.running);
    })();
    let finished = false;
    const timer = this.clock.setTimer(budgetMs, () => {
      if (finished) return;
      this.logger.warn('shutdown timeout: cancelling the reconciles still running', {
        shutdownTimeoutMs: budgetMs,
      });
      this.fence.abort(new Error(`shutdown timeout (${budgetMs} ms) reached`));
      // The fenced sink cannot write any more: drop queued events instead of retrying them.
      this.broadcaster.abandon();
    });
    await done;
    finished = true;
    timer.cancel();
  }

  private async startServers(): Promise<HttpEndpoint[]> {
    const servers: HttpEndpoint[] = [];
    const metricsBind = parseBindAddress(this.opts.metricsBindAddress);
    if (metricsBind) {
      const auth = this.opts.metricsSecure
        ? new DelegatedAuth(this.deps.client, { clock: this.clock })
        : undefined;
      const s = new HttpEndpoint(
        async (req, res) => {
          const path = new URL(req.url ?? '/', 'http://localhost').pathname;
          if (path !== '/metrics') return false;
          if (auth) {
            let decision: Awaited<ReturnType<DelegatedAuth['check']>>;
            try {
              decision = await auth.check(req, path);
            } catch (err) {
              // A TokenReview or SubjectAccessReview the apiserver refused (e.g. Forbidden: the
              // ServiceAccount lacks the review rights): the scraper sees a 500, the log says why.
              this.logger.error('metrics request: delegated authentication or authorization failed', {
                err: errorMessage(err),
              });
              throw err;
            }
            if (!decision.allowed) {
              res.writeHead(decision.status, { 'Content-Type': 'text/plain; charset=utf-8' });
              res.end(`${decision.message}\n`);
              return true;
            }
          }
          const body = await this.registry.metrics();
          res.writeHead(200, { 'Content-Type': this.registry.contentType });
          res.end(body);
          return true;
        },
        this.opts.metricsSecure ? this.metricsTls() : undefined,
      );
      this.metricsAddress = await s.listen(metricsBind);
      servers.push(s);
      this.logger.info('serving metrics', {
        address: this.metricsAddress,
        scheme: this.opts.metricsSecure ? 'https' : 'http',
      });
    }
    const healthBind = parseBindAddress(this.opts.healthProbeBindAddress);
    if (healthBind) {
      // Its heartbeat runs only while /healthz is served: nothing else reads it.
      this.watchdog = new EventLoopWatchdog({ clock: this.clock });
      this.watchdog.start();
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

  /** The secure metrics endpoint's certificate: from --metrics-cert-dir, else self-signed. */
  private metricsTls(): TlsMaterial {
    const dir = this.opts.metricsCertDir;
    if (dir) {
      return {
        cert: readFileSync(join(dir, 'tls.crt'), 'utf8'),
        key: readFileSync(join(dir, 'tls.key'), 'utf8'),
      };
    }
    const now = this.clock.now();
    const self = issueCertificate({
      subject: { commonName: `${hostname()}-metrics` },
      isCA: false,
      usage: 'server',
      dnsNames: ['localhost', hostname()],
      ipAddresses: ['127.0.0.1', '::1'],
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
    });
    this.logger.info('no --metrics-cert-dir: serving metrics with a self-signed certificate');
    return { cert: self.certPem, key: self.keyPem };
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
    // A controller waiting for an API the server does not serve (a CRD not installed yet) does
    // not make the process unready: the others work, and it starts when the API appears.
    // ?verbose says which controller waits and why.
    const waiting = (): string | undefined => {
      const reasons = (this.gates ?? []).filter((g) => g.phase === 'unserved').map((g) => g.reason);
      return reasons.length ? reasons.join('; ') : undefined;
    };
    const informerSync: HealthCheck = {
      name: 'informer-sync',
      check: () => {
        if (standby()) return undefined;
        const notSynced = (this.gates ?? []).filter((g) => g.phase === 'syncing' || g.phase === 'blocked');
        if (!this.gates || notSynced.length)
          return new Error(`informer caches not synced: ${names(notSynced)}`);
        return undefined;
      },
      detail: waiting,
    };
    const controllers: HealthCheck = {
      name: 'controllers-started',
      check: () => {
        if (standby()) return undefined;
        const notStarted = (this.gates ?? []).filter((g) => g.phase !== 'synced' && g.phase !== 'unserved');
        if (!this.gates || notStarted.length)
          return new Error(`controllers not started: ${names(notStarted)}`);
        return undefined;
      },
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
    // Liveness: the process is wedged (event loop blocked, or the leader's renew loop stuck),
    // never merely cut off from the apiserver.
    const live = [ping, leaderElection, ...(this.watchdog ? [this.watchdog] : [])];
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

function names(gates: CacheSyncGate[]): string {
  return gates.map((g) => g.controller).join(', ') || 'not built yet';
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
