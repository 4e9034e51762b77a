/**
 * Scale-out of a sharding ring: N ServiceCIDRs created at once, time until every one carries
 * the finalizer and Ready=True, with 1, 2 and 4 `ts-kcm run --sharding-ring` replicas at the
 * default client limits (20 qps, burst 30 each: a new ServiceCIDR costs two writes, so one
 * replica tops out near 10 keys/s). Each round uses its own ring, waits until every replica is
 * active, and cleans up (finalizers stripped, objects deleted) with the replicas stopped.
 *
 * Part of `npm run bench` in full mode only (test/bench/run.ts), not of `npm test`; to run it
 * on its own after `npm run build`:
 *   node_modules/.bin/node dist/test/bench/sharding.bench.js [--objects N] [--replicas 1,2,4]
 * With no --kubeconfig it starts (and stops) a private local control plane. Bounded: fixed
 * object count, every wait has a timeout, child processes are killed on the way out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceCIDR } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type RestKubeClient } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { NODE_FLAGS } from '../../controllers/node-flags.js';

const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'controllers', 'main.js');

export interface ShardingBenchOptions {
  kubeconfig: string;
  objects?: number; // default 500
  replicas?: number[]; // default [1, 2, 4]
  print?: (line: string) => void;
}

interface Replica {
  proc: ChildProcess;
  out: string;
  health?: string;
}

function startReplica(kubeconfig: string, ring: string, i: number): Replica {
  const proc = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      MAIN,
      'run',
      '--kubeconfig',
      kubeconfig,
      '--controllers=service-cidr-controller',
      `--sharding-ring=${ring}`,
      '--leader-elect-resource-namespace=kube-system',
      '--leader-elect-lease-duration=8s',
      '--leader-elect-renew-deadline=4s',
      '--leader-elect-retry-period=1s',
      '--metrics-bind-address=0',
      '--health-probe-bind-address=127.0.0.1:0',
      `--user-agent=bench-${i}/ts-kcm`,
      '--log-format=json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const r: Replica = { proc, out: '' };
  const onData = (d: Buffer): void => {
    r.out += d.toString();
    r.health ??= /"address":"([^"]+)"[^\n]*"message":"serving health probes"/.exec(r.out)?.[1];
    if (r.out.length > 1_000_000) r.out = r.out.slice(-100_000);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  return r;
}

async function waitUntil(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function ready(sc: ServiceCIDR): boolean {
  return (
    (sc.metadata.finalizers ?? []).includes(FINALIZER) &&
    (sc.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

async function stopAll(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          if (r.proc.exitCode !== null || r.proc.signalCode !== null) return resolve();
          r.proc.once('close', () => resolve());
          r.proc.kill('SIGKILL');
        }),
    ),
  );
}

async function round(client: RestKubeClient, kubeconfig: string, n: number, count: number): Promise<number> {
  const rc = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
  const ring = `bench-${count}-${Date.now().toString(36)}`;
  const replicas = Array.from({ length: count }, (_, i) => startReplica(kubeconfig, ring, i));
  const names = Array.from({ length: n }, (_, i) => `${ring}-${i}`);
  try {
    await waitUntil(`${count} active replicas`, 90_000, async () => {
      const pages = await Promise.all(
        replicas.map(async (r) =>
          r.health ? (await fetch(`http://${r.health}/readyz?verbose`)).text() : '',
        ),
      );
      return pages.every((p) => p.includes(`members=${count} `) && p.includes('self=active'));
    });
    const started = Date.now();
    for (let i = 0; i < n; i += 50)
      await Promise.all(
        names.slice(i, i + 50).map((name, j) =>
          rc.create({
            apiVersion: 'networking.k8s.io/v1',
            kind: 'ServiceCIDR',
            metadata: { name },
            spec: { cidrs: [`10.${128 + ((i + j) >> 8)}.${(i + j) & 255}.0/24`] },
          }),
        ),
      );
    const mine = new Set(names);
    await waitUntil(`${n} ServiceCIDRs Ready`, 600_000, async () => {
      const items = (await rc.list()).items.filter((s) => mine.has(s.metadata.name ?? ''));
      return items.length === n && items.every(ready);
    });
    return (Date.now() - started) / 1000;
  } finally {
    await stopAll(replicas);
    // Clean up with no controller running: strip the finalizers, then delete.
    for (let i = 0; i < n; i += 50)
      await Promise.all(
        names.slice(i, i + 50).map(async (name) => {
          await rc.patch(name, { metadata: { finalizers: null } }, { type: 'merge' }).catch(() => undefined);
          await rc.delete(name).catch(() => undefined);
        }),
      );
  }
}

export async function runShardingBench(opts: ShardingBenchOptions): Promise<void> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const n = opts.objects ?? 500;
  const counts = opts.replicas ?? [1, 2, 4];
  const client = createKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }), { qps: 500, burst: 1000 });
  try {
    const results: { replicas: number; seconds: number }[] = [];
    for (const count of counts) {
      const seconds = await round(client, opts.kubeconfig, n, count);
      results.push({ replicas: count, seconds });
      print(`sharding: ${count} replica(s): ${n} ServiceCIDRs create→Ready in ${seconds.toFixed(1)} s`);
    }
    const base = results[0]!;
    print('');
    print(`| replicas | seconds (N=${n}) | keys/s | speed-up vs ${base.replicas} |`);
    print('| -------- | ---------------- | ------ | ----------- |');
    for (const r of results)
      print(
        `| ${r.replicas} | ${r.seconds.toFixed(1)} | ${(n / r.seconds).toFixed(1)} | ${(base.seconds / r.seconds).toFixed(2)}× |`,
      );
  } finally {
    await client.close();
  }
}

function argOf(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const objects = Number(argOf('--objects') ?? 500);
  const replicas = (argOf('--replicas') ?? '1,2,4').split(',').map(Number);
  let kubeconfig = argOf('--kubeconfig');
  let cp: ControlPlane | undefined;
  let dir: string | undefined;
  if (!kubeconfig) {
    dir = mkdtempSync(join(tmpdir(), 'ts-kcm-sharding-bench-'));
    console.log(`node ${process.version}; starting a local control plane in ${dir}`);
    cp = await ControlPlane.start({ dir });
    kubeconfig = cp.kubeconfigPath;
  }
  try {
    await runShardingBench({ kubeconfig, objects, replicas });
  } finally {
    await cp?.stop({ removeData: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
