/**
 * ts-kcm against upstream kube-controller-manager, one controller at a time, each run on a
 * fresh local control plane (etcd + kube-apiserver from our build cache), at equal client
 * limits. The controller process is spawned after the objects exist; CPU (user + system) and
 * peak RSS (VmHWM) come from /proc for that process alone, read at the end of the workload.
 *
 * ServiceCIDR: N ServiceCIDRs created, controller started, time until every one carries the
 * finalizer and Ready=True; then all deleted, time until every one is gone (this includes
 * the controller's 10 s deletion grace period, for both contenders).
 * Idle: both controllers, empty cluster, RSS after a settle period.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeObject, ServiceCIDR } from '../../lib/api/index.js';
import {
  createKubeClient,
  loadKubeConfig,
  Resources,
  type KubeClient,
  type ResourceClient,
  type WatchEventType,
} from '../../lib/client/index.js';
import { cachedBinDir, ControlPlane, pinnedVersions, projectRoot } from '../../lib/controlplane/index.js';
import { NODE_FLAGS } from '../../controllers/node-flags.js';

export type Contender = 'ts-kcm' | 'kcm';

export interface Limits {
  qps: number;
  burst: number;
}

export interface ProcFigures {
  cpuSeconds: number;
  peakRssMB: number;
  rssMB: number;
}

export interface ServiceCIDRRun extends ProcFigures {
  contender: Contender;
  n: number;
  limits: Limits;
  /** ts-kcm's --concurrent-service-cidr-syncs when not the default (KCM's hard-coded 5). */
  workers?: number;
  readySeconds: number;
  /**
   * Spawn → the first write the controller makes (the first MODIFIED event of a watch the
   * bench opens before the spawn): its start-up and cache sync, the part of readySeconds in
   * which no object can get Ready. Absent in results saved before it was measured.
   */
  firstWriteSeconds?: number;
  goneSeconds: number;
}

export interface IdleRun extends ProcFigures {
  contender: Contender;
}

const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
const CLK_TCK = 100; // Linux USER_HZ: /proc/PID/stat counts CPU time in 1/100 s.

/** CPU seconds (user + system) and RSS figures of a live process, as the kernel reports them. */
export function procFigures(pid: number): ProcFigures {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing paren).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { cpuSeconds: (utime + stime) / CLK_TCK, peakRssMB: kb('VmHWM') / 1024, rssMB: kb('VmRSS') / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cidrOf(i: number): string {
  // 172.16.0.0/12 in /24s: 4,096 distinct ranges, none overlapping the default service range.
  return `172.${16 + (i >> 8)}.${i & 255}.0/24`;
}

export async function inParallel<T>(
  items: T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** TS_KCM_BENCH_LOG=FILE appends the contender's stdout and stderr to FILE (e.g. with --trace-gc). */
function spawnLogged(command: string, args: string[]): ChildProcess {
  const file = process.env.TS_KCM_BENCH_LOG;
  if (!file) return spawn(command, args, { stdio: 'ignore' });
  const fd = openSync(file, 'a');
  try {
    return spawn(command, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

export function spawnController(
  who: Contender,
  kubeconfig: string,
  controllers: { tsKcm: string; kcm: string },
  limits: Limits,
  dir: string,
  /** Extra flags for ts-kcm only (e.g. more workers than KCM's hard-coded five). */
  tsKcmArgs: string[] = [],
): ChildProcess {
  if (who === 'ts-kcm') {
    const main = fileURLToPath(new URL('../../controllers/main.js', import.meta.url));
    // The flags the image runs node with, then TS_KCM_BENCH_NODE_ARGS (a later flag wins):
    // '--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the contender.
    const nodeArgs = [
      ...NODE_FLAGS,
      ...(process.env.TS_KCM_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
    return spawnLogged(process.execPath, [
      ...nodeArgs,
      main,
      'run',
      `--kubeconfig=${kubeconfig}`,
      `--controllers=${controllers.tsKcm}`,
      '--leader-elect=false',
      '--metrics-bind-address=0',
      '--health-probe-bind-address=0',
      `--kube-api-qps=${limits.qps}`,
      `--kube-api-burst=${limits.burst}`,
      ...tsKcmArgs,
    ]);
  }
  const bin = join(cachedBinDir(pinnedVersions(projectRoot())), 'kube-controller-manager');
  return spawnLogged(bin, [
    `--kubeconfig=${kubeconfig}`,
    `--controllers=${controllers.kcm}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--use-service-account-credentials=false',
    `--service-account-private-key-file=${join(dir, 'pki', 'sa.key')}`,
    `--root-ca-file=${join(dir, 'pki', 'serving', 'apiserver.crt')}`,
    `--kube-api-qps=${limits.qps}`,
    `--kube-api-burst=${limits.burst}`,
  ]);
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Poll a condition every 200 ms until it holds or `timeoutMs` passes; returns seconds taken from `start`. */
export async function until(
  start: number,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<number> {
  for (;;) {
    if (await check()) return (performance.now() - start) / 1000;
    if (performance.now() - start > timeoutMs) return NaN;
    await sleep(200);
  }
}

export async function withControlPlane<T>(
  fn: (client: KubeClient, kubeconfig: string, dir: string) => Promise<T>,
  opts: { scheduler?: boolean } = {},
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-bench-cp-'));
  const cp = await ControlPlane.start({ dir, scheduler: opts.scheduler });
  // The load generator itself runs unthrottled: it must never be what limits the contender.
  const client = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 0 });
  try {
    return await fn(client, cp.kubeconfigPath, dir);
  } finally {
    await client.close();
    await cp.stop({ removeData: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

function isReady(sc: ServiceCIDR): boolean {
  return (
    (sc.metadata.finalizers ?? []).includes(FINALIZER) &&
    (sc.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/**
 * Watches `rc` from now on; `stop()` ends the watch and returns when the first event of `type`
 * arrived (performance.now(), NaN if none did): the contender's first write, which tells its
 * start-up and cache sync apart from the work.
 */
export async function firstEvent<T extends KubeObject>(
  rc: ResourceClient<T>,
  type: WatchEventType,
  namespace?: string,
): Promise<{ stop: () => Promise<number> }> {
  const ac = new AbortController();
  const { resourceVersion } = (await rc.list({ namespace, limit: 1 })).metadata;
  let at = NaN;
  const watching = (async () => {
    for await (const ev of rc.watch({ namespace, resourceVersion }, ac.signal))
      if (ev.type === type) {
        at = performance.now();
        return;
      }
  })().catch(() => undefined);
  return {
    stop: async () => {
      ac.abort();
      await watching;
      return at;
    },
  };
}

export async function serviceCIDRRun(
  who: Contender,
  n: number,
  limits: Limits,
  workers?: number,
): Promise<ServiceCIDRRun> {
  if (workers !== undefined && who !== 'ts-kcm') throw new Error('only ts-kcm takes a worker count');
  return withControlPlane(async (client, kubeconfig, dir) => {
    const scs = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
    await inParallel(names, 32, async (name) => {
      await scs.create({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name },
        spec: { cidrs: [cidrOf(Number(name.slice(6)))] },
      } as ServiceCIDR);
    });
    const mine = (sc: ServiceCIDR) => sc.metadata.name?.startsWith('bench-');
    const firstWrite = await firstEvent(scs, 'MODIFIED');
    const start = performance.now();
    const child = spawnController(
      who,
      kubeconfig,
      { tsKcm: 'service-cidr-controller', kcm: 'service-cidr-controller' },
      limits,
      dir,
      workers === undefined ? [] : [`--concurrent-service-cidr-syncs=${workers}`],
    );
    try {
      const readySeconds = await until(start, 600_000, async () => {
        const list = await scs.list();
        return list.items.filter((sc) => mine(sc) && isReady(sc)).length === n;
      });
      const firstWriteAt = await firstWrite.stop();
      const delStart = performance.now();
      await inParallel(names, 32, (name) => scs.delete(name));
      const goneSeconds = await until(delStart, 600_000, async () => {
        const list = await scs.list();
        return !list.items.some(mine);
      });
      const figures = procFigures(child.pid!);
      return {
        contender: who,
        n,
        limits,
        ...(workers === undefined ? {} : { workers }),
        readySeconds,
        firstWriteSeconds: (firstWriteAt - start) / 1000,
        goneSeconds,
        ...figures,
      };
    } finally {
      await stopProcess(child);
    }
  });
}

/** Both controllers (ServiceCIDR and ResourceClaim) on an empty cluster, RSS after `settleMs`. */
export async function idleRun(who: Contender, settleMs: number): Promise<IdleRun> {
  return withControlPlane(async (_client, kubeconfig, dir) => {
    const child = spawnController(
      who,
      kubeconfig,
      {
        tsKcm: 'service-cidr-controller,resourceclaim-controller',
        kcm: 'service-cidr-controller,resource-claim-controller',
      },
      { qps: 20, burst: 30 },
      dir,
    );
    try {
      await sleep(settleMs);
      if (child.exitCode !== null)
        throw new Error(`${who} exited during the idle run (code ${child.exitCode})`);
      return { contender: who, ...procFigures(child.pid!) };
    } finally {
      await stopProcess(child);
    }
  });
}

export interface RawWriteRun {
  n: number;
  writes: number;
  seconds: number;
  writesPerSecond: number;
}

/**
 * Build one program of test/bench/go (rawwrite: standard library only; informer, workqueue:
 * client-go v0.35.4 through the Go module proxy) into the cache; returns its path. The binary
 * is named after a hash of its sources and go.mod/go.sum, so an edited program is rebuilt.
 */
export function buildGoProgram(name: 'rawwrite' | 'informer' | 'workqueue'): string {
  const goDir = join(projectRoot(), 'test', 'bench', 'go');
  const hash = createHash('sha256');
  for (const f of [
    'go.mod',
    'go.sum',
    ...readdirSync(join(goDir, name))
      .map((f) => join(name, f))
      .sort(),
  ])
    hash.update(f).update(readFileSync(join(goDir, f)));
  const out = join(
    dirname(cachedBinDir(pinnedVersions(projectRoot()))),
    '..',
    'bench',
    `${name}-${hash.digest('hex').slice(0, 12)}`,
  );
  if (!existsSync(out)) {
    const res = spawnSync('go', ['build', '-o', out, `./${name}`], {
      cwd: goDir,
      stdio: 'inherit',
    });
    if (res.status !== 0) throw new Error(`go build of test/bench/go/${name} failed`);
  }
  return out;
}

export interface GoWorkqueueResult {
  scenario: string;
  itemsPerSecond: number;
}

/** client-go's workqueue, the scenarios of test/bench/go/workqueue (1 s each). */
export function goWorkqueueRun(binary: string): GoWorkqueueResult[] {
  const res = spawnSync(binary, [], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`workqueue failed: ${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as GoWorkqueueResult);
}

/**
 * The physical limit: the same writes the ServiceCIDR controller needs per object (finalizer
 * patch, status patch) made by a bare concurrent Go loop against a fresh apiserver.
 */
export async function rawWriteRun(binary: string, n: number): Promise<RawWriteRun> {
  return withControlPlane(async (client, kubeconfig, dir) => {
    const scs = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
    await inParallel(names, 32, async (name) => {
      await scs.create({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name },
        spec: { cidrs: [cidrOf(Number(name.slice(6)))] },
      } as ServiceCIDR);
    });
    const kc = loadKubeConfig({ kubeconfig });
    const cluster = kc.getCurrentCluster()!;
    let ca = cluster.caFile ?? '';
    if (cluster.caData) {
      ca = join(dir, 'bench-ca.crt');
      writeFileSync(ca, Buffer.from(cluster.caData, 'base64'));
    }
    const res = spawnSync(
      binary,
      [
        `-server=${cluster.server}`,
        `-token=${kc.getCurrentUser()?.token ?? ''}`,
        `-ca=${ca}`,
        `-n=${n}`,
        '-workers=32',
      ],
      { encoding: 'utf8' },
    );
    if (res.status !== 0) throw new Error(`rawwrite failed: ${res.stderr}`);
    const r = JSON.parse(res.stdout) as { writes: number; seconds: number; writesPerSecond: number };
    return { n, ...r };
  });
}
