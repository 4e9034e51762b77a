/**
 * `npm run soak -- --minutes N`: ts-kcm's service-cidr-controller runs for N minutes against a
 * private control plane, through the fault proxy, under steady ServiceCIDR churn and a fault
 * every minute (cut, reset mid-line, half-open stall, refused connections, latency). It
 * samples ts-kcm's own /metrics every 5 s — RSS, V8 heap used, active handles, event-loop
 * lag p99 — and reports growth from the first to the last fifth after warm-up (must be
 * < 10 %), then checks the invariants from the apiserver and regenerates docs/reliability.md
 * with the chart. The churn holds the number of live ServiceCIDRs at MAX_LIVE (each create
 * past it deletes the oldest), so "flat" measures the controller, not a growing cache; each
 * sample also counts the soak's ServiceCIDRs in the apiserver to show it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceCIDR } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { startTsKcm, waitFor } from '../support/cluster.js';
import { proxyControlPlane } from '../support/fault-proxy.js';
import { checkServiceCIDRs, ServiceCIDRSampler } from '../support/invariants.js';
import { renderChart, type Series } from './chart.js';
import { OUT_DIR, writeReport, type SoakResult } from './report.js';

const SAMPLE_MS = 5_000;
const FAULT_EVERY_MS = 60_000;
const MAX_LIVE = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function minutesArg(): number {
  const i = process.argv.indexOf('--minutes');
  const v = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith('--minutes='))?.slice(10);
  const n = v === undefined ? 10 : Number(v);
  if (!Number.isFinite(n) || n < 2 || n > 24 * 60) {
    process.stderr.write('usage: npm run soak -- --minutes N   (2 <= N <= 1440)\n');
    process.exit(2);
  }
  return n;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The four figures the soak tracks, from a Prometheus text exposition. */
function parseMetrics(text: string): Record<string, number> {
  const want: Record<string, string> = {
    process_resident_memory_bytes: 'rss',
    nodejs_heap_size_used_bytes: 'heap',
    nodejs_active_handles_total: 'handles',
    nodejs_eventloop_lag_p99_seconds: 'lag',
  };
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // Metric names may hold digits (nodejs_eventloop_lag_p99_seconds): [a-z_]+ missed that one.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (m && want[m[1]] && !(want[m[1]] in out)) out[want[m[1]]] = Number(m[2]);
  }
  return out;
}

type Metric = 'rss' | 'heap' | 'handles' | 'lag';
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  const minutes = minutesArg();
  const runMs = minutes * 60_000;
  const warmupMs = Math.max(120_000, runMs * 0.3);
  const cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-soak-')) });
  const admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 200, burst: 400 });
  const { proxy, kubeconfig: proxied } = await proxyControlPlane(cp, { maxLifetimeMs: runMs + 10 * 60_000 });
  const metricsPort = await freePort();
  const kcm = startTsKcm(
    [
      'run',
      '--controllers=service-cidr-controller',
      '--leader-elect=false',
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      '--health-probe-bind-address=0',
    ],
    { kubeconfig: proxied },
  );
  const samples: { t: number; rss: number; heap: number; handles: number; lag: number; live: number }[] = [];
  const live: string[] = [];
  const liveSet = new Set<string>();
  const deleted = new Set<string>();
  const faults: string[] = [];
  let created = 0;
  let stop = false;
  const sampler = new ServiceCIDRSampler(admin, 'soak-');
  try {
    await kcm.waitForOutput(/starting workers/, 120_000);
    const start = Date.now();
    sampler.start(1_000);
    process.stderr.write(
      `soak: ${minutes} min, warm-up ${Math.round(warmupMs / 1000)} s, metrics :${metricsPort}\n`,
    );

    const churn = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `soak-${i}`;
        try {
          await admin.resource<ServiceCIDR>(Resources.serviceCIDRs).create({
            apiVersion: 'networking.k8s.io/v1',
            kind: 'ServiceCIDR',
            metadata: { name },
            spec: { cidrs: [`10.${100 + ((i >> 8) & 63)}.${i & 255}.0/28`] },
          });
          created++;
          live.push(name);
          liveSet.add(name);
          if (live.length > MAX_LIVE) {
            const victim = live.shift() as string;
            liveSet.delete(victim);
            deleted.add(victim);
            await admin.resource(Resources.serviceCIDRs).delete(victim);
          }
        } catch (err) {
          process.stderr.write(`soak: churn: ${(err as Error).message}\n`);
        }
        await sleep(200);
      }
    })();

    const kinds = ['cut', 'reset', 'stall', 'refuse', 'latency'] as const;
    const faulting = (async () => {
      for (let k = 0; !stop; k++) {
        await sleep(FAULT_EVERY_MS);
        process.stderr.write(
          `soak: ${Math.round((Date.now() - start) / 1000)} s, ${created} created, ${samples.length} samples\n`,
        );
        if (stop) break;
        const kind = kinds[k % kinds.length];
        faults.push(kind);
        if (kind === 'cut') proxy.cutAll();
        else if (kind === 'reset') proxy.resetMidStream();
        else if (kind === 'stall') proxy.stall(40_000);
        else if (kind === 'refuse') {
          proxy.refuse(5_000);
          proxy.cutAll();
        } else {
          proxy.latency(50, 50);
          setTimeout(() => proxy.latency(0, 0), 20_000).unref();
        }
      }
    })();

    while (Date.now() - start < runMs) {
      await sleep(SAMPLE_MS);
      try {
        const m = parseMetrics(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
        // ServiceCIDRs of the soak in the apiserver (terminating ones included): what ts-kcm caches.
        const list = await admin.resource<ServiceCIDR>(Resources.serviceCIDRs).list();
        samples.push({
          t: (Date.now() - start) / 1000,
          rss: m.rss,
          heap: m.heap,
          handles: m.handles,
          lag: m.lag,
          live: list.items.filter((sc) => sc.metadata.name?.startsWith('soak-')).length,
        });
      } catch (err) {
        process.stderr.write(`soak: metrics: ${(err as Error).message}\n`);
      }
      if (kcm.proc.exitCode !== null) throw new Error(`ts-kcm exited with ${kcm.proc.exitCode}`);
    }
    stop = true;
    await Promise.all([churn, faulting]);
    proxy.latency(0, 0);
    const settledAt = Date.now();
    let violations = await checkServiceCIDRs(admin, 'soak-', liveSet, deleted);
    await waitFor(
      async () => {
        violations = await checkServiceCIDRs(admin, 'soak-', liveSet, deleted);
        return violations.length === 0;
      },
      { timeoutMs: 180_000, intervalMs: 1_000, description: 'soak invariants' },
    ).catch(() => undefined);
    await sampler.stop();
    violations = [...violations, ...sampler.earlyReleases()];

    const after = samples.filter((s) => s.t * 1000 >= warmupMs);
    const window = Math.max(1, Math.floor(after.length / 5));
    const early = after.slice(0, window);
    const late = after.slice(-window);
    // Heap used at a random point of V8's saw-tooth is mostly garbage not yet collected: its
    // floor over a window (the sample just after a collection) is what is live; a leak raises
    // it. RSS follows the heap V8 has reserved, which it grows and gives back in steps of
    // tens of MB every few minutes, so its floor depends on whether a window caught a
    // give-back: RSS, handles and lag compare window means.
    const floors = new Set<Metric>(['heap']);
    const growthBy = (key: Metric, reduce: (xs: number[]) => number) => {
      const a = reduce(early.map((s) => s[key]));
      const b = reduce(late.map((s) => s[key]));
      return a > 0 ? (b - a) / a : 0;
    };
    const growth = (key: Metric) => growthBy(key, floors.has(key) ? (xs) => Math.min(...xs) : mean);
    const result: SoakResult = {
      minutes,
      warmupSeconds: Math.round(warmupMs / 1000),
      samples: samples.length,
      created,
      deleted: deleted.size,
      faults: faults.length,
      faultKinds: [...new Set(faults)],
      convergeMs: Date.now() - settledAt,
      violations: violations.length,
      growth: { rss: growth('rss'), heap: growth('heap'), handles: growth('handles'), lag: growth('lag') },
      growthOfMeans: { heap: growthBy('heap', mean) },
      maxLive: MAX_LIVE,
      live: { early: mean(early.map((s) => s.live)), late: mean(late.map((s) => s.live)) },
      final: samples[samples.length - 1],
      at: new Date().toISOString(),
    };
    const series: Series[] = [
      { label: 'RSS', unit: 'MB', points: samples.map((s) => [s.t, s.rss / 2 ** 20]) },
      { label: 'V8 heap used', unit: 'MB', points: samples.map((s) => [s.t, s.heap / 2 ** 20]) },
      { label: 'active handles', unit: 'count', points: samples.map((s) => [s.t, s.handles]) },
      { label: 'event-loop lag p99', unit: 'ms', points: samples.map((s) => [s.t, s.lag * 1000]) },
      {
        label: 'soak ServiceCIDRs in the apiserver',
        unit: 'count',
        points: samples.map((s) => [s.t, s.live]),
      },
    ];
    writeFileSync(
      join(OUT_DIR, 'soak.svg'),
      renderChart(`ts-kcm soak: ${minutes} min, churn + a fault a minute`, series, result.warmupSeconds),
    );
    writeFileSync(join(OUT_DIR, 'soak.json'), `${JSON.stringify({ ...result, series: samples }, null, 2)}\n`);
    writeReport();
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    process.stderr.write(
      `soak: ${created} created, ${deleted.size} deleted, ${faults.length} faults, violations ${violations.length}; ` +
        `growth after warm-up: rss ${pct(result.growth.rss)}, heap ${pct(result.growth.heap)}, handles ${pct(result.growth.handles)}\n`,
    );
    const flat = Math.max(result.growth.rss, result.growth.heap, result.growth.handles) < 0.1;
    process.exitCode = violations.length === 0 && flat ? 0 : 1;
  } finally {
    stop = true;
    await kcm.stop('SIGTERM').catch(() => undefined);
    await proxy.stop();
    await admin.close();
    await cp.stop();
  }
}

await main();
