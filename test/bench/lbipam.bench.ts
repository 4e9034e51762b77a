/**
 * service-lb-ipam-controller allocation throughput: N LoadBalancer Services created at once,
 * timed until every one shows an ingress IP, with ts-kcm (a child process running only this
 * controller) at the default client limits and at raised ones. Each allocation is three
 * writes (finalizer, IPAddress, status) plus events and pool status, so the client's qps is
 * the ceiling. Bounded: a fixed Service count, and a deadline per round.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import type { KubeObject } from '../../lib/api/index.js';
import { createKubeClient, isAlreadyExists, loadKubeConfig, Resources } from '../../lib/client/index.js';
import { loadBalancerIPPools, type LBService } from '../../controllers/lbipam/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
// Two rounds of this many must fit in the ServiceCIDR (10.0.0.0/24 on the local control plane).
const SERVICES = 100;

export interface LBIPAMBenchOptions {
  kubeconfig: string;
}

export async function runLBIPAMBench(opts: LBIPAMBenchOptions): Promise<void> {
  const client = createKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }), {
    qps: 1000,
    burst: 2000,
  });
  const crd = load(
    readFileSync(join(root, 'manifests/crds/lb.ts-kcm.io_loadbalancerippools.yaml'), 'utf8'),
  ) as KubeObject;
  const crds = client.resource({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  });
  await crds.create(crd).catch((err: unknown) => {
    if (!isAlreadyExists(err)) throw err;
  });
  for (let i = 0; ; i++) {
    try {
      await client.resource(loadBalancerIPPools).list();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const rows: string[] = [];
  for (const [label, qps, burst, round] of [
    ['default (qps 20, burst 30)', 20, 30, 1],
    ['raised (qps 200, burst 400)', 200, 400, 2],
  ] as const) {
    const ns = `lbipam-bench-${round}-${Date.now().toString(36)}`;
    await client
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const pool = `bench-${round}-${Date.now().toString(36)}`;
    await client.resource(loadBalancerIPPools).create({
      apiVersion: 'lb.ts-kcm.io/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name: pool },
      spec: { addresses: [`192.168.${100 + round}.0/24`] },
    } as KubeObject);
    const kcm = spawn(
      process.execPath,
      [
        join(root, 'dist/controllers/main.js'),
        'run',
        '--kubeconfig',
        opts.kubeconfig,
        '--controllers=service-lb-ipam-controller',
        '--leader-elect=false',
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
        `--kube-api-qps=${qps}`,
        `--kube-api-burst=${burst}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let synced = false;
    kcm.stderr.setEncoding('utf8').on('data', (d: string) => (synced ||= d.includes('caches synced')));
    try {
      while (!synced) await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      await Promise.all(
        [...Array(SERVICES).keys()].map((i) =>
          client.resource(Resources.services).create({
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: `s-${i}`, namespace: ns, annotations: { 'lb.ts-kcm.io/address-pool': pool } },
            spec: {
              type: 'LoadBalancer',
              loadBalancerClass: 'lb.ts-kcm.io/ipam',
              allocateLoadBalancerNodePorts: false,
              ports: [{ port: 80 }],
            },
          } as LBService),
        ),
      );
      const deadline = Date.now() + 120_000;
      for (;;) {
        const items = (await client.resource<LBService>(Resources.services).list({ namespace: ns })).items;
        const done = items.filter((s) => s.status?.loadBalancer?.ingress?.[0]?.ip).length;
        if (done === SERVICES) break;
        if (Date.now() > deadline) throw new Error(`${label}: only ${done}/${SERVICES} allocated in 120 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const s = (performance.now() - t0) / 1000;
      rows.push(
        `| ${label.padEnd(27)} | ${String(SERVICES).padStart(8)} | ${s.toFixed(2).padStart(6)} | ${(SERVICES / s).toFixed(1).padStart(13)} |`,
      );
    } finally {
      kcm.kill('SIGTERM');
      await new Promise((r) => kcm.once('exit', r));
    }
  }
  console.log('\n## service-lb-ipam-controller allocations\n');
  console.log('| ts-kcm client limits        | Services |    s   | allocations/s |');
  console.log('| --------------------------- | -------: | -----: | ------------: |');
  for (const r of rows) console.log(r);
  await client.close();
}

// Standalone: node dist/test/bench/lbipam.bench.js <kubeconfig>
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const kubeconfig = process.argv[2];
  if (!kubeconfig) throw new Error('usage: node dist/test/bench/lbipam.bench.js KUBECONFIG');
  await runLBIPAMBench({ kubeconfig });
}
