/**
 * `ts-kcm run`: the controller-manager, with kube-controller-manager's flag names and
 * defaults (and controller-runtime's for the probe and metrics servers). With no kubeconfig
 * anywhere it brings up the embedded local control plane and runs against that.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  checkKubeConfig,
  createKubeClient,
  findKubeConfigSource,
  KubeConfig,
  loadKubeConfig,
  ServiceAccountTokenSource,
  type KubeClient,
  type RestKubeClient,
} from '../client/index.js';
import type { ControllerDefinition, ControllerFlag } from '../controller/types.js';
// The embedded control plane and the CRD installer load only when used (start-up cost).
import type { ControlPlane } from '../controlplane/index.js';
import { DEFAULT_MIN_RESYNC_PERIOD_MS } from '../informer/index.js';
import { DEFAULT_JITTER_FACTOR } from '../leaderelection/index.js';
import { createLogger, errorMessage, type Logger } from '../log/index.js';
import {
  DEFAULT_MANAGER_OPTIONS,
  formatDuration,
  Manager,
  parseDuration,
  resolveControllers,
  type ManagerOptions,
} from '../manager/index.js';
import { newRegistry } from '../metrics/index.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { verbosity } from './verbosity.js';
import { pluginOption } from './plugins.js';

/** Where `npm start` keeps the control plane it brings up when there is no cluster (git-ignored). */
export const EMBEDDED_CONTROLPLANE_DIR = '.ts-kcm/embedded';

export interface RunOptions extends ManagerOptions {
  kubeconfig?: string;
  /** kube-controller-manager's client defaults: 20 qps, burst 30. */
  kubeApiQps: number;
  kubeApiBurst: number;
  verbosity: number;
  /** Default: text when stderr is a terminal, json otherwise. */
  logFormat?: 'json' | 'text';
  /** Directory for the embedded control plane (only used when no kubeconfig exists). */
  embeddedDir: string;
  /**
   * User-Agent of the controllers' client (default `ts-kcm`). The apiserver names the manager
   * of an Update or Patch without fieldManager after its part before the first `/`, so giving
   * each replica of a sharding ring its own tells in managedFields which replica wrote what.
   */
  userAgent?: string;
  /** --use-service-account-credentials: each controller as its own ServiceAccount. */
  useServiceAccountCredentials?: boolean;
  /** Where those ServiceAccounts live. Default kube-system (kube-controller-manager's). */
  serviceAccountCredentialsNamespace?: string;
}

/** The kubeconfig's cluster (server, CA, proxy) with no user: credentials come from elsewhere. */
function withoutUser(kc: KubeConfig): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new Error(`kubeconfig context ${JSON.stringify(kc.getCurrentContext())} has no cluster`);
  const bare = new KubeConfig();
  bare.loadFromClusterAndUser(cluster, { name: 'service-account' });
  return bare;
}

export const DEFAULT_RUN_OPTIONS: RunOptions = {
  ...DEFAULT_MANAGER_OPTIONS,
  kubeApiQps: 20,
  kubeApiBurst: 30,
  verbosity: 0,
  minResyncPeriodMs: DEFAULT_MIN_RESYNC_PERIOD_MS,
  embeddedDir: EMBEDDED_CONTROLPLANE_DIR,
};

export interface RunDeps {
  /** The controllers this binary offers (controllers/main.ts passes the built-in ones). */
  definitions: ControllerDefinition[];
  logger?: Logger;
  /** Where to print the kubectl hint for the embedded control plane. Default stdout. */
  out?: (line: string) => void;
}

/**
 * Run the manager until `signal` aborts; resolves to the process exit code (0 after a clean
 * shutdown, 1 on lost leadership or a start failure, 2 on bad options).
 */
export async function runManager(
  options: Partial<RunOptions>,
  signal: AbortSignal,
  deps: RunDeps,
): Promise<number> {
  const opts: RunOptions = { ...DEFAULT_RUN_OPTIONS, ...options };
  const definitions = deps.definitions;
  const logger = deps.logger ?? createLogger({ verbosity: opts.verbosity, format: opts.logFormat });
  const out = deps.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  try {
    resolveControllers(definitions, opts.controllers);
  } catch (err) {
    logger.error('invalid --controllers', { err: errorMessage(err) });
    process.stderr.write(`error: --controllers: ${errorMessage(err)}\n`);
    return EXIT_USAGE;
  }

  let embedded: ControlPlane | undefined;
  const clients: RestKubeClient[] = [];
  let kubeconfig = opts.kubeconfig;
  try {
    if (!findKubeConfigSource({ kubeconfig })) {
      const started = await startEmbedded(opts.embeddedDir, logger, out);
      embedded = started.startedByUs ? started.cp : undefined;
      kubeconfig = started.cp.kubeconfigPath;
      if (signal.aborted) return 0;
    }
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig({ kubeconfig });
      checkKubeConfig(kc);
    } catch (err) {
      // A credential that cannot work is a usage error, as an unknown flag is: say what, exit 2.
      const where = kubeconfig ?? findKubeConfigSource({})?.kind ?? 'kubeconfig';
      logger.error('unusable kubeconfig', { kubeconfig: where, err: errorMessage(err) });
      process.stderr.write(`error: kubeconfig ${where}: ${errorMessage(err)}\n`);
      return EXIT_USAGE;
    }
    // The process metrics only where they can be scraped (their collectors cost memory).
    const registry = newRegistry({ processMetrics: opts.metricsBindAddress.trim() !== '0' });
    const clientOptions = { qps: opts.kubeApiQps, burst: opts.kubeApiBurst, registry, logger };
    const client = createKubeClient(kc, {
      ...clientOptions,
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    });
    // Its own throttle, so controllers at their qps limit cannot starve Lease renewals.
    const leaderElectionClient = createKubeClient(kc, {
      ...clientOptions,
      userAgent: 'ts-kcm/leader-election',
    });
    clients.push(client, leaderElectionClient);
    if (embedded || kubeconfig !== opts.kubeconfig) {
      // Our own local control plane: give it the CRDs the enabled controllers need.
      const crdFiles = resolveControllers(definitions, opts.controllers).flatMap((d) => d.crds ?? []);
      if (crdFiles.length > 0) {
        const { installCRDs, readCRDs } = await import('../sdk/testing.js');
        await installCRDs(client, readCRDs(crdFiles), 'ts-kcm');
        logger.info('installed CRDs into the embedded control plane', { files: crdFiles.length });
      }
    }
    let controllerClient: ((controller: string) => KubeClient) | undefined;
    if (opts.useServiceAccountCredentials) {
      // As kube-controller-manager: each controller is its own ServiceAccount, in the
      // namespace given, with a token from TokenRequest that the manager's client mints.
      const namespace = opts.serviceAccountCredentialsNamespace ?? 'kube-system';
      const anonymous = withoutUser(kc);
      const byController = new Map<string, KubeClient>();
      controllerClient = (controller) => {
        let c = byController.get(controller);
        if (!c) {
          const tokenSource = new ServiceAccountTokenSource({
            client,
            namespace,
            name: controller,
            createIfMissing: true,
          });
          const rc = createKubeClient(anonymous, {
            ...clientOptions,
            userAgent: `ts-kcm/${controller}`,
            tokenSource,
          });
          clients.push(rc);
          byController.set(controller, (c = rc));
          logger.info('controller uses its own service account credentials', {
            controller,
            user: tokenSource.username,
          });
        }
        return c;
      };
    }
    const manager = new Manager(opts, {
      client,
      leaderElectionClient,
      controllerClient,
      definitions,
      logger,
      registry,
    });
    return await manager.run(signal);
  } catch (err) {
    logger.error('controller manager failed', { err: errorMessage(err) });
    return 1;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (embedded) {
      logger.info('stopping the embedded control plane', { dir: embedded.dir });
      await embedded
        .stop()
        .catch((err: unknown) =>
          logger.error('could not stop the embedded control plane', { err: errorMessage(err) }),
        );
    }
  }
}

/** Start the embedded control plane, or reuse one a previous `ts-kcm run` left running there. */
async function startEmbedded(
  dir: string,
  logger: Logger,
  out: (line: string) => void,
): Promise<{ cp: ControlPlane; startedByUs: boolean }> {
  const abs = resolve(dir);
  const { ControlPlane } = await import('../controlplane/index.js');
  let cp: ControlPlane | undefined;
  let startedByUs = false;
  try {
    const existing = ControlPlane.load(abs, { logger });
    if (existing.status().every((c) => c.running)) cp = existing;
  } catch {
    // nothing there yet
  }
  if (!cp) {
    logger.info(
      'no kubeconfig found (--kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config): starting the embedded control plane',
      { dir: abs },
    );
    cp = await ControlPlane.start({ dir: abs, logger });
    startedByUs = true;
  }
  out(
    `ts-kcm: no kubeconfig found, so running against the local control plane in ${abs}${startedByUs ? '' : ' (already running)'}.`,
  );
  out('Look at it with kubectl:');
  out(`  kubectl --kubeconfig ${cp.kubeconfigPath} get servicecidrs,ipaddresses`);
  out(`  kubectl --kubeconfig ${cp.kubeconfigPath} get events.events.k8s.io -A`);
  out(
    startedByUs
      ? 'It stops when ts-kcm stops (Ctrl-C).'
      : `Stop it with: ts-kcm controlplane down --dir ${abs}`,
  );
  return { cp, startedByUs };
}

// ---- flags ----

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

function nonNegativeDuration(value: string): number {
  const ms = duration(value);
  if (ms < 0) throw new InvalidArgumentError('must not be negative');
  return ms;
}

function positiveDuration(value: string): number {
  const ms = duration(value);
  if (ms <= 0) throw new InvalidArgumentError('must be greater than zero');
  return ms;
}

function bool(value: string | boolean): boolean {
  if (
    value === true ||
    value === 'true' ||
    value === '1' ||
    value === 't' ||
    value === 'TRUE' ||
    value === 'True'
  )
    return true;
  if (value === 'false' || value === '0' || value === 'f' || value === 'FALSE' || value === 'False')
    return false;
  throw new InvalidArgumentError('must be true or false');
}

function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

function integer(value: string): number {
  const n = number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function atLeastOne(value: string): number {
  const n = integer(value);
  if (n < 1) throw new InvalidArgumentError('must be at least 1');
  return n;
}

interface ParsedFlags {
  kubeconfig?: string;
  controllers: string;
  kubeApiQps: number;
  kubeApiBurst: number;
  leaderElect: boolean;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
  leaderElectResourceName: string;
  leaderElectResourceNamespace: string;
  leaderElectResourceLock: string;
  metricsBindAddress: string;
  metricsSecure: boolean;
  metricsCertDir?: string;
  useServiceAccountCredentials: boolean;
  serviceAccountCredentialsNamespace: string;
  healthProbeBindAddress: string;
  shutdownTimeout: number;
  minResyncPeriod: number;
  shardingRing?: string;
  userAgent?: string;
  v: number;
  logFormat?: 'json' | 'text';
  /** Already loaded by main() before parsing (see plugins.ts); listed so commander accepts it. */
  plugin?: string[];
  [controllerFlag: string]: unknown;
}

/** A controller's flag as a commander option; every type parses to a number (see ControllerFlag). */
function controllerFlagOption(f: ControllerFlag, controller: string): Option {
  const description = `${f.description} (${controller})`;
  switch (f.type ?? 'number') {
    case 'boolean':
      return new Option(`--${f.name} [bool]`, description)
        .argParser((v: string | boolean) => (bool(v) ? 1 : 0))
        .default(f.defaultValue, String(f.defaultValue !== 0));
    case 'duration':
      return new Option(`--${f.name} <duration>`, description)
        .argParser(duration)
        .default(f.defaultValue, formatDuration(f.defaultValue));
    default:
      // A concurrency of 0 would leave the controller's queue filling with nobody to drain it.
      return new Option(`--${f.name} <n>`, description)
        .argParser(/^concurrent-/.test(f.name) ? atLeastOne : integer)
        .default(f.defaultValue);
  }
}

/** commander's camelCase attribute for a dashed flag name. */
function attributeOf(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Turn parsed flags into runManager's options (exported for tests). */
export function runOptionsFromFlags(
  flags: ParsedFlags,
  definitions: ControllerDefinition[],
): Partial<RunOptions> {
  const controllerFlags: Record<string, number> = {};
  for (const def of definitions) {
    for (const f of def.flags) {
      const v = flags[attributeOf(f.name)];
      controllerFlags[f.name] = v === true ? 1 : (v as number); // a bare boolean --flag
    }
  }
  if (flags.leaderElectResourceLock !== 'leases') {
    throw new ExitError(EXIT_USAGE, `error: --leader-elect-resource-lock: only "leases" is supported`);
  }
  if (flags.metricsCertDir !== undefined) {
    if (!flags.metricsSecure) {
      throw new ExitError(EXIT_USAGE, 'error: --metrics-cert-dir needs --metrics-secure=true');
    }
    for (const f of ['tls.crt', 'tls.key']) {
      if (!existsSync(join(flags.metricsCertDir, f))) {
        throw new ExitError(
          EXIT_USAGE,
          `error: --metrics-cert-dir: ${join(flags.metricsCertDir, f)} not found`,
        );
      }
    }
  }
  const d = DEFAULT_RUN_OPTIONS;
  if (flags.kubeApiQps > 0 && flags.kubeApiBurst < 1) {
    // client-go refuses this pair too: a token bucket of size 0 would never let a request out.
    throw new ExitError(
      EXIT_USAGE,
      'error: --kube-api-burst must be at least 1 when --kube-api-qps is above 0',
    );
  }
  if (
    (flags.leaderElect || Boolean(flags.shardingRing)) &&
    !(flags.leaderElectLeaseDuration > flags.leaderElectRenewDeadline)
  ) {
    throw new ExitError(
      EXIT_USAGE,
      'error: --leader-elect-lease-duration must be greater than --leader-elect-renew-deadline',
    );
  }
  const electing = flags.leaderElect || Boolean(flags.shardingRing);
  if (electing && !(flags.leaderElectRenewDeadline > flags.leaderElectRetryPeriod * DEFAULT_JITTER_FACTOR)) {
    throw new ExitError(
      EXIT_USAGE,
      `error: --leader-elect-renew-deadline must be greater than --leader-elect-retry-period * ${DEFAULT_JITTER_FACTOR}`,
    );
  }
  return {
    kubeconfig: flags.kubeconfig,
    controllers: flags.controllers.split(','),
    kubeApiQps: flags.kubeApiQps,
    kubeApiBurst: flags.kubeApiBurst,
    leaderElect: flags.leaderElect,
    leaseDurationMs: flags.leaderElectLeaseDuration,
    renewDeadlineMs: flags.leaderElectRenewDeadline,
    retryPeriodMs: flags.leaderElectRetryPeriod,
    leaseName: flags.leaderElectResourceName,
    leaseNamespace: flags.leaderElectResourceNamespace,
    metricsBindAddress: flags.metricsBindAddress,
    metricsSecure: flags.metricsSecure,
    metricsCertDir: flags.metricsCertDir,
    useServiceAccountCredentials: flags.useServiceAccountCredentials,
    serviceAccountCredentialsNamespace: flags.serviceAccountCredentialsNamespace,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    shutdownTimeoutMs: flags.shutdownTimeout,
    minResyncPeriodMs: flags.minResyncPeriod,
    ...(flags.shardingRing ? { shardingRing: flags.shardingRing } : {}),
    ...(flags.userAgent ? { userAgent: flags.userAgent } : {}),
    verbosity: flags.v,
    logFormat: flags.logFormat,
    controllerFlags,
    embeddedDir: d.embeddedDir,
  };
}

/** What the command runs once flags are parsed; tests pass their own to inspect the options. */
export type Runner = (options: Partial<RunOptions>, definitions: ControllerDefinition[]) => Promise<number>;

export function runCommand(definitions: ControllerDefinition[], runner: Runner = runWithSignals): Command {
  const d = DEFAULT_RUN_OPTIONS;
  const names = definitions.map((x) => x.name).sort();
  const cmd = new Command('run')
    .description('run the controller-manager (the default command)')
    .addOption(pluginOption())
    .option(
      '--kubeconfig <path>',
      'path to a kubeconfig; default $KUBECONFIG, in-cluster, ~/.kube/config, else an embedded local control plane',
    )
    .option(
      '--controllers <list>',
      `controllers to enable: '*' all enabled by default, 'foo' enables foo, '-foo' disables foo. Known: ${names.join(', ')}`,
      d.controllers.join(','),
    )
    .option('--kube-api-qps <qps>', 'QPS to use while talking with kube-apiserver', number, d.kubeApiQps)
    .option('--kube-api-burst <n>', 'burst to use while talking with kube-apiserver', integer, d.kubeApiBurst)
    .addOption(
      new Option(
        '--leader-elect [bool]',
        'take a Lease before running controllers (for replicated deployments)',
      )
        .argParser(bool)
        .default(d.leaderElect),
    )
    .addOption(
      new Option(
        '--leader-elect-lease-duration <duration>',
        'how long a standby waits after the last observed renew before taking the lease',
      )
        .argParser(positiveDuration)
        .default(d.leaseDurationMs, formatDuration(d.leaseDurationMs)),
    )
    .addOption(
      new Option(
        '--leader-elect-renew-deadline <duration>',
        'how long the leader retries renewing before it gives up leading',
      )
        .argParser(positiveDuration)
        .default(d.renewDeadlineMs, formatDuration(d.renewDeadlineMs)),
    )
    .addOption(
      new Option(
        '--leader-elect-retry-period <duration>',
        'wait between attempts to acquire or renew the lease',
      )
        .argParser(positiveDuration)
        .default(d.retryPeriodMs, formatDuration(d.retryPeriodMs)),
    )
    .option('--leader-elect-resource-name <name>', 'name of the Lease', d.leaseName)
    .option('--leader-elect-resource-namespace <ns>', 'namespace of the Lease', d.leaseNamespace)
    .addOption(
      new Option('--leader-elect-resource-lock <kind>', 'lock type; only "leases"').default('leases'),
    )
    .option(
      '--metrics-bind-address <addr>',
      "address for /metrics: host:port, ':port' for all interfaces, '0' to disable",
      d.metricsBindAddress,
    )
    .addOption(
      new Option(
        '--metrics-secure [bool]',
        'serve /metrics over HTTPS; each scrape needs a bearer token that a TokenReview authenticates and a SubjectAccessReview allows (get /metrics)',
      )
        .argParser(bool)
        .default(false),
    )
    .option(
      '--metrics-cert-dir <dir>',
      'directory with tls.crt and tls.key for --metrics-secure; default a self-signed certificate',
    )
    .addOption(
      new Option(
        '--use-service-account-credentials [bool]',
        "run each controller as its own ServiceAccount (named as the controller; token from TokenRequest, renewed before expiry), as kube-controller-manager's flag",
      )
        .argParser(bool)
        .default(false),
    )
    .option(
      '--service-account-credentials-namespace <ns>',
      "namespace of the controllers' ServiceAccounts for --use-service-account-credentials",
      'kube-system',
    )
    .option(
      '--health-probe-bind-address <addr>',
      "address for /healthz and /readyz: host:port, ':port' for all interfaces, '0' to disable",
      d.healthProbeBindAddress,
    )
    .addOption(
      new Option(
        '--shutdown-timeout <duration>',
        'how long in-flight reconciles may run after SIGTERM/SIGINT',
      )
        .argParser(nonNegativeDuration)
        .default(d.shutdownTimeoutMs, formatDuration(d.shutdownTimeoutMs)),
    )
    .addOption(
      new Option(
        '--min-resync-period <duration>',
        'informers re-deliver their cache to handlers every min-resync-period × [1, 2)',
      )
        .argParser(nonNegativeDuration)
        .default(DEFAULT_MIN_RESYNC_PERIOD_MS, formatDuration(DEFAULT_MIN_RESYNC_PERIOD_MS)),
    )
    .option(
      '--sharding-ring <name>',
      'every replica works: join the ring NAME (a Lease per replica in the leader-election namespace) and reconcile only the keys this replica owns; --leader-elect is then ignored',
    )
    .option(
      '--user-agent <ua>',
      "User-Agent of the controllers' client (default ts-kcm); the apiserver names Update/Patch managers after its part before '/'",
    )
    .option(
      '-v, --v <level>',
      'log verbosity (klog style: V(n) lines print at -v n and up)',
      verbosity,
      d.verbosity,
    )
    .addOption(
      new Option('--log-format <format>', 'log format (default: text on a terminal, json otherwise)').choices(
        ['json', 'text'],
      ),
    );
  for (const def of definitions) {
    for (const f of def.flags) cmd.addOption(controllerFlagOption(f, def.name));
  }
  cmd.allowExcessArguments(false).action(async (flags: ParsedFlags) => {
    const options = runOptionsFromFlags(flags, definitions);
    const code = await runner(options, definitions);
    if (code !== 0) throw new ExitError(code);
  });
  return cmd;
}

/** First SIGTERM/SIGINT: graceful shutdown. A second one: exit at once. */
/** A repeat of the shutdown signal within this window is the same request, not a second one. */
const DUPLICATE_SIGNAL_WINDOW_MS = 1000;

export async function runWithSignals(
  options: Partial<RunOptions>,
  definitions: ControllerDefinition[],
): Promise<number> {
  const stop = new AbortController();
  const logger = createLogger({ verbosity: options.verbosity, format: options.logFormat });
  let firstSignalAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      // Ctrl-C under `npm start` arrives twice at once: from the terminal and forwarded by
      // npm. Only a signal sent well after the first means "stop now, skip the cleanup".
      if (Date.now() - firstSignalAt < DUPLICATE_SIGNAL_WINDOW_MS) return;
      logger.warn('second signal: exiting without cleanup', { signal: sig });
      process.exit(1);
    }
    firstSignalAt = Date.now();
    logger.info('received signal, shutting down', { signal: sig });
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await runManager(options, stop.signal, { definitions, logger });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
