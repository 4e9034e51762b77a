/**
 * A real local control plane (etcd + kube-apiserver, optionally kube-scheduler and
 * kube-controller-manager) on 127.0.0.1, the way controller-runtime's envtest runs one.
 * Components run detached; DIR/state.json lets any process load, inspect and stop them.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { nopLogger, type Logger } from '../log/index.js';
import { locateBinaries } from './binaries.js';
import {
  newToken,
  renderKubeconfig,
  writeClientCertificates,
  writeServiceAccountKeys,
  writeTokenFile,
} from './credentials.js';
import {
  apiserverFlags,
  auditFlags,
  mergeFlags,
  writeAuditPolicy,
  controllerManagerFlags,
  DEFAULT_SERVICE_CLUSTER_IP_RANGE,
  etcdFlags,
  schedulerFlags,
} from './flags.js';
import { freePorts } from './ports.js';
import { isRunning, killNow, logTail, readLogRange, spawnDetached, terminate } from './process.js';
import { apiserverReady, etcdHealthy, pollReady } from './readiness.js';
import {
  COMPONENT_ORDER,
  readState,
  STATE_FILE,
  writeState,
  type ComponentName,
  type ComponentState,
  type ControlPlaneState,
  type StartupFigures,
} from './state.js';

/** Generous: a cold kube-apiserver on two busy cores needs 10-30 s to become ready. */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;
/** Start attempts before a port race is reported as a failure. */
export const DEFAULT_MAX_ATTEMPTS = 5;

export interface ControlPlaneOptions {
  dir: string;
  /** Also run kube-scheduler (needed for DRA end-to-end tests). */
  scheduler?: boolean;
  /** Also run kube-controller-manager with these --controllers (e.g. "service-cidr-controller"). */
  kubeControllerManager?: string;
  /** Extra kube-apiserver flags; one of the same name replaces the default (see mergeFlags). */
  apiserverExtraArgs?: string[];
  /**
   * Writes an audit log of every write (Metadata level, JSON lines) to DIR/audit.log
   * (ControlPlane.auditLogPath), under the policy in DIR/audit-policy.yaml.
   */
  auditLog?: boolean;
  /** Default DEFAULT_SERVICE_CLUSTER_IP_RANGE. */
  serviceClusterIPRange?: string;
  /** Directory holding the four binaries; default: the build cache (built if missing). */
  binDir?: string;
  logger?: Logger;
  readyTimeoutMs?: number;
  maxAttempts?: number;
  /** Picks [etcd client, etcd peer, apiserver] ports; tests replace it to provoke a port race. */
  pickPorts?: () => Promise<number[]>;
}

export interface ComponentStatus {
  name: ComponentName;
  pid: number | null;
  running: boolean;
  logFile: string;
}

export class ComponentStartError extends Error {
  constructor(
    readonly component: ComponentName,
    readonly reason: 'exited' | 'timeout',
    readonly logTail: string,
    /** The component lost a race for one of its ports; a new start with new ports may work. */
    readonly portInUse: boolean,
  ) {
    super(
      `ts-kcm: ${component} ${reason === 'exited' ? 'exited during start-up' : 'did not become ready'}; log tail:\n${logTail}`,
    );
    this.name = 'ComponentStartError';
  }
}

/** Files and folders a control plane owns inside DIR; `stop` removes exactly these. */
function layout(dir: string) {
  return {
    state: join(dir, STATE_FILE),
    kubeconfig: join(dir, 'kubeconfig'),
    certKubeconfig: join(dir, 'kubeconfig-cert'),
    logs: join(dir, 'logs'),
    pki: join(dir, 'pki'),
    certDir: join(dir, 'pki', 'serving'),
    tokenFile: join(dir, 'pki', 'token.csv'),
    clientCA: join(dir, 'pki', 'client-ca.crt'),
    clientCAKey: join(dir, 'pki', 'client-ca.key'),
    adminCert: join(dir, 'pki', 'admin.crt'),
    adminKey: join(dir, 'pki', 'admin.key'),
    saKey: join(dir, 'pki', 'sa.key'),
    saPub: join(dir, 'pki', 'sa.pub'),
    etcdData: join(dir, 'etcd'),
    auditPolicy: join(dir, 'audit-policy.yaml'),
    auditLog: join(dir, 'audit.log'),
  };
}

export class ControlPlane {
  private constructor(
    private state: ControlPlaneState,
    private readonly logger: Logger,
    private readonly readyTimeoutMs: number,
  ) {}

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const logger = opts.logger ?? nopLogger();
    const dir = resolve(opts.dir);
    const files = layout(dir);
    const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    mkdirSync(dir, { recursive: true });
    if (existsSync(files.state)) {
      const previous = ControlPlane.load(dir, { logger });
      if (previous.status().some((c) => c.running)) {
        throw new Error(
          `ts-kcm: a control plane is already running in ${dir}; run "controlplane down --dir ${dir}" first`,
        );
      }
      previous.removeData();
      mkdirSync(dir, { recursive: true });
    }
    const binDir =
      opts.binDir ??
      (await locateBinaries(logger, [
        'etcd',
        'kube-apiserver',
        ...(opts.scheduler ? (['kube-scheduler'] as const) : []),
        ...(opts.kubeControllerManager ? (['kube-controller-manager'] as const) : []),
      ]));
    mkdirSync(files.logs, { recursive: true });
    mkdirSync(files.certDir, { recursive: true });
    const token = newToken();
    writeTokenFile(files.tokenFile, token);
    writeClientCertificates({
      caFile: files.clientCA,
      caKeyFile: files.clientCAKey,
      certFile: files.adminCert,
      keyFile: files.adminKey,
    });
    writeServiceAccountKeys(files.saKey, files.saPub);

    for (let attempt = 1; ; attempt++) {
      const [clientPort, peerPort, securePort] = (await (opts.pickPorts ?? (() => freePorts(3)))()) as [
        number,
        number,
        number,
      ];
      const etcdClientURL = `http://127.0.0.1:${clientPort}`;
      const component = (name: ComponentName, args: string[]): ComponentState => ({
        binary: join(binDir, name),
        args,
        pid: null,
        logFile: join(files.logs, `${name}.log`),
      });
      const cp = new ControlPlane(
        {
          dir,
          binDir,
          etcdClientURL,
          apiserverURL: `https://127.0.0.1:${securePort}`,
          kubeconfigPath: files.kubeconfig,
          certKubeconfigPath: files.certKubeconfig,
          token,
          certDir: files.certDir,
          components: {
            etcd: component('etcd', etcdFlags({ dataDir: files.etcdData, clientPort, peerPort })),
            'kube-apiserver': component(
              'kube-apiserver',
              mergeFlags(
                apiserverFlags({
                  etcdURL: etcdClientURL,
                  securePort,
                  certDir: files.certDir,
                  tokenFile: files.tokenFile,
                  clientCAFile: files.clientCA,
                  serviceAccountPublicKey: files.saPub,
                  serviceAccountPrivateKey: files.saKey,
                  serviceClusterIPRange: opts.serviceClusterIPRange ?? DEFAULT_SERVICE_CLUSTER_IP_RANGE,
                }),
                [
                  ...(opts.auditLog ? auditFlags(files.auditPolicy, files.auditLog) : []),
                  ...(opts.apiserverExtraArgs ?? []),
                ],
              ),
            ),
          },
          startup: { attempts: attempt, readyMs: 0 },
        },
        logger,
        readyTimeoutMs,
      );
      if (opts.auditLog) writeFileSync(files.auditPolicy, writeAuditPolicy());
      const began = performance.now();
      try {
        await cp.startComponent('etcd');
        await cp.startComponent('kube-apiserver');
      } catch (err) {
        await cp.stop({ removeData: false });
        rmSync(files.etcdData, { recursive: true, force: true });
        if (err instanceof ComponentStartError && err.portInUse && attempt < maxAttempts) {
          logger.warn('port race during control plane start; retrying with new ports', {
            component: err.component,
            attempt,
          });
          continue;
        }
        throw err;
      }
      cp.state.startup.readyMs = Math.round(performance.now() - began);
      logger.info('control plane ready', { apiserver: cp.apiserverURL, ...cp.state.startup });

      const caPem = readFileSync(join(files.certDir, 'apiserver.crt'), 'utf8');
      writeFileSync(files.kubeconfig, renderKubeconfig({ server: cp.apiserverURL, token, caPem }), {
        mode: 0o600,
      });
      writeFileSync(
        files.certKubeconfig,
        renderKubeconfig({
          server: cp.apiserverURL,
          caPem,
          clientCertPem: readFileSync(files.adminCert, 'utf8'),
          clientKeyPem: readFileSync(files.adminKey, 'utf8'),
        }),
        { mode: 0o600 },
      );
      if (opts.scheduler) {
        cp.state.components['kube-scheduler'] = component('kube-scheduler', schedulerFlags(files.kubeconfig));
        await cp.startComponent('kube-scheduler');
      }
      if (opts.kubeControllerManager) {
        cp.state.components['kube-controller-manager'] = component(
          'kube-controller-manager',
          controllerManagerFlags({
            kubeconfig: files.kubeconfig,
            controllers: opts.kubeControllerManager,
            serviceAccountPrivateKey: files.saKey,
            rootCAFile: join(files.certDir, 'apiserver.crt'),
          }),
        );
        await cp.startComponent('kube-controller-manager');
      }
      return cp;
    }
  }

  /** A control plane started earlier, possibly by another process, from DIR/state.json. */
  static load(dir: string, opts: { logger?: Logger; readyTimeoutMs?: number } = {}): ControlPlane {
    return new ControlPlane(
      readState(resolve(dir)),
      opts.logger ?? nopLogger(),
      opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    );
  }

  get dir(): string {
    return this.state.dir;
  }
  get etcdClientURL(): string {
    return this.state.etcdClientURL;
  }
  get apiserverURL(): string {
    return this.state.apiserverURL;
  }
  get kubeconfigPath(): string {
    return this.state.kubeconfigPath;
  }
  /** A kubeconfig for the same admin with client-certificate-data/client-key-data, as kind writes. */
  get certKubeconfigPath(): string {
    return this.state.certKubeconfigPath;
  }
  /** Where the audit log goes when started with `auditLog: true` (the file may not exist yet). */
  get auditLogPath(): string {
    return layout(this.state.dir).auditLog;
  }
  get binDir(): string {
    return this.state.binDir;
  }
  get startup(): StartupFigures {
    return { ...this.state.startup };
  }

  /** Components this control plane was started with, in start order. */
  components(): ComponentName[] {
    return COMPONENT_ORDER.filter((name) => this.state.components[name] !== undefined);
  }

  status(): ComponentStatus[] {
    return this.components().map((name) => {
      const c = this.component(name);
      return { name, pid: c.pid, running: isRunning(c.pid, c.binary), logFile: c.logFile };
    });
  }

  logTail(name: ComponentName, lines?: number): string {
    return logTail(this.component(name).logFile, lines);
  }

  /** (Re)starts one component with its original flags and ports, and waits until it serves. */
  async startComponent(name: ComponentName): Promise<void> {
    const c = this.component(name);
    if (isRunning(c.pid, c.binary)) return;
    const logOffset = existsSync(c.logFile) ? statSync(c.logFile).size : 0;
    c.pid = spawnDetached(c.binary, c.args, c.logFile, this.state.dir);
    writeState(this.state);
    this.logger.debug('started component', { component: name, pid: c.pid });
    const probe = this.probeFor(name);
    if (!probe) return;
    const outcome = await pollReady(probe, () => isRunning(c.pid, c.binary), this.readyTimeoutMs);
    if (outcome === 'ready') return;
    const fresh = readLogRange(c.logFile, logOffset);
    throw new ComponentStartError(name, outcome, logTail(c.logFile), /address already in use/i.test(fresh));
  }

  /** Stops one component: SIGTERM, then SIGKILL after `graceMs` (0: SIGKILL at once). */
  async stopComponent(name: ComponentName, opts: { graceMs?: number } = {}): Promise<void> {
    const c = this.component(name);
    if (c.pid !== null) await terminate(c.pid, c.binary, opts.graceMs);
    c.pid = null;
    if (existsSync(this.state.dir)) writeState(this.state);
  }

  /**
   * Kills kube-apiserver and starts it again on the same port over the same etcd; watches
   * break mid-stream. Default graceMs 0 (SIGKILL, like a crash); pass a grace period for a
   * SIGTERM shutdown, which ends watch streams cleanly after at most that long.
   */
  async restartApiserver(opts: { graceMs?: number } = {}): Promise<void> {
    await this.restartComponent('kube-apiserver', { graceMs: opts.graceMs ?? 0 });
  }

  /**
   * Stops one component (SIGKILL by default, like a crash) and starts it again on the same
   * ports and files; with `extraArgs` its command line changes for this and later starts
   * (a flag of the same name replaces the old one, e.g. `--max-requests-inflight=5`).
   */
  async restartComponent(
    name: ComponentName,
    opts: { graceMs?: number; extraArgs?: string[] } = {},
  ): Promise<void> {
    await this.stopComponent(name, { graceMs: opts.graceMs ?? 0 });
    if (opts.extraArgs?.length) {
      const c = this.component(name);
      c.args = mergeFlags(c.args, opts.extraArgs);
      writeState(this.state);
    }
    // The stopped process's port can stay bound for a moment on a busy machine (CI failed
    // both restart paths on it): try again while the new process says so, up to 10 s.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startComponent(name);
        return;
      } catch (err) {
        if (!(err instanceof ComponentStartError) || !err.portInUse || attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Stops every component (reverse start order) and, by default, removes everything it wrote in DIR. */
  async stop(opts: { removeData?: boolean } = {}): Promise<void> {
    for (const name of [...this.components()].reverse()) await this.stopComponent(name);
    if (opts.removeData ?? true) this.removeData();
  }

  /** For process exit hooks: SIGKILL now, remove data, no waiting. */
  killNowSync(): void {
    for (const name of this.components()) {
      const c = this.component(name);
      killNow(c.pid, c.binary);
    }
    this.removeData();
  }

  private removeData(): void {
    const files = layout(this.state.dir);
    for (const path of [
      files.etcdData,
      files.pki,
      files.logs,
      files.kubeconfig,
      files.certKubeconfig,
      files.auditPolicy,
      files.auditLog,
      files.state,
    ]) {
      rmSync(path, { recursive: true, force: true });
    }
    try {
      rmdirSync(this.state.dir); // only when empty: DIR may hold files that are not ours
    } catch {
      // not empty or already gone
    }
  }

  private component(name: ComponentName): ComponentState {
    const c = this.state.components[name];
    if (!c) throw new Error(`ts-kcm: this control plane has no ${name}`);
    return c;
  }

  private probeFor(name: ComponentName): (() => Promise<boolean>) | undefined {
    switch (name) {
      case 'etcd':
        return () => etcdHealthy(this.state.etcdClientURL);
      case 'kube-apiserver':
        return () => apiserverReady(this.state.apiserverURL, this.state.token);
      default:
        // kube-scheduler and kube-controller-manager run with --secure-port=0: no health endpoint.
        return undefined;
    }
  }
}
