/**
 * Side by side with the TypeScript peer: the same N ConfigMaps on the same apiserver, synced
 * into a cache by our informer and by @kubernetes/client-node's `makeInformer`, alternating
 * order over several rounds. Each measurement runs in a fresh child process (both libraries
 * loaded before the baseline), so one contender's garbage cannot skew another's heap figure.
 * Reports the medians and our/peer ratios, measured side by side in one run.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, makeInformer, type V1ConfigMap } from '@kubernetes/client-node';
import type { KubeObject } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type KubeClient } from '../../lib/client/index.js';
import {
  DefaultSharedIndexInformer,
  IDENTITY_TRANSFORM,
  STRIP_MANAGED_FIELDS,
} from '../../lib/informer/index.js';

export interface PeerBenchOptions {
  kubeconfig: string;
  /** test/bench/go/informer built (buildGoProgram); without it client-go is left out. */
  clientGoBinary?: string;
  objects?: number; // default 3,000
  rounds?: number; // default 3
  print?: (line: string) => void;
}

export interface Sample {
  seconds: number;
  heapBytesPerObject: number;
}

type Contender = (
  ns: string,
  n: number,
) => Promise<{ seconds: number; cached: number; release: () => Promise<void> }>;

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  if (!gc) return NaN;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function ours(client: KubeClient, strip: boolean): Contender {
  return async (ns) => {
    const ac = new AbortController();
    const informer = new DefaultSharedIndexInformer(
      Resources.configmaps,
      client.resource(Resources.configmaps),
      {
        namespace: ns,
        transform: strip ? STRIP_MANAGED_FIELDS : IDENTITY_TRANSFORM,
      },
    );
    informer.addEventHandler({ onAdd: () => undefined });
    const start = performance.now();
    const running = informer.run(ac.signal);
    await informer.whenSynced();
    const seconds = (performance.now() - start) / 1000;
    return {
      seconds,
      cached: informer.getIndexer().listKeys().length,
      release: async () => {
        ac.abort();
        await running;
      },
    };
  };
}

function clientNode(kubeconfig: string): Contender {
  return async (ns) => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const api = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1ConfigMap>(kc, `/api/v1/namespaces/${ns}/configmaps`, () =>
      api.listNamespacedConfigMap({ namespace: ns }),
    );
    informer.on('add', () => undefined);
    informer.on('error', () => undefined);
    const start = performance.now();
    await informer.start(); // resolves once the list is cached and the watch is open
    const seconds = (performance.now() - start) / 1000;
    return { seconds, cached: informer.list(ns).length, release: async () => informer.stop() };
  };
}

const names = {
  oursStrip: 'ts-kcm informer (strip managedFields, default)',
  oursKeep: 'ts-kcm informer (keep managedFields)',
  clientNode: '@kubernetes/client-node makeInformer',
  clientGo: 'client-go SharedIndexInformer (Go)',
} as const;
type ContenderId = keyof typeof names;

/** In the child: build the contender, measure, print one JSON line. */
async function worker(id: ContenderId, ns: string, n: number, kubeconfig: string): Promise<void> {
  const client = createKubeClient(loadKubeConfig({ kubeconfig }), { qps: -1, userAgent: 'ts-kcm-bench' });
  const contender = id === 'clientNode' ? clientNode(kubeconfig) : ours(client, id === 'oursStrip');
  const sample = await measure(names[id], contender, ns, n);
  await (client as { close?: () => Promise<void> }).close?.();
  process.stdout.write(JSON.stringify(sample) + '\n');
}

async function measureInChild(
  id: ContenderId,
  ns: string,
  n: number,
  kubeconfig: string,
  clientGoBinary?: string,
): Promise<Sample> {
  if (id === 'clientGo') {
    const { stdout } = await promisify(execFile)(
      clientGoBinary!,
      [`-kubeconfig=${kubeconfig}`, `-namespace=${ns}`, `-n=${n}`],
      { maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout.trim()) as Sample & { cached: number };
    if (r.cached !== n) throw new Error(`client-go informer: cached ${r.cached} of ${n}`);
    return { seconds: r.seconds, heapBytesPerObject: r.heapBytesPerObject };
  }
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', self, '--worker', id, ns, String(n), kubeconfig],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Sample;
}

async function measure(name: string, contender: Contender, ns: string, n: number): Promise<Sample> {
  const before = heapUsed();
  const run = await contender(ns, n);
  const after = heapUsed(); // the cache is alive here
  await run.release();
  if (run.cached !== n) throw new Error(`${name}: cached ${run.cached} of ${n}`);
  return { seconds: run.seconds, heapBytesPerObject: (after - before) / n };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runPeerBench(opts: PeerBenchOptions): Promise<Partial<Record<string, Sample>>> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const n = opts.objects ?? 3_000;
  const rounds = opts.rounds ?? 3;
  const client = createKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }), {
    qps: -1,
    userAgent: 'ts-kcm-bench',
  });
  const ns = `peer-bench-${Date.now().toString(36)}`;
  const namespaces = client.resource(Resources.namespaces);
  await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  try {
    const cms = client.resource(Resources.configmaps);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < n) {
          const i = next++;
          const obj: KubeObject & { data: Record<string, string> } = {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `peer-${i}`, namespace: ns, labels: { app: 'bench', shard: String(i % 16) } },
            data: {
              'config.yaml': `replicas: ${i % 5}\nimage: registry.example/app:${i}\n`,
              version: String(i),
            },
          };
          await cms.create(obj);
        }
      }),
    );
    const ids = (Object.keys(names) as ContenderId[]).filter(
      (id) => id !== 'clientGo' || opts.clientGoBinary,
    );
    const samples = new Map<ContenderId, Sample[]>(ids.map((id) => [id, []]));
    for (let round = 0; round < rounds; round++) {
      // Alternate the order so apiserver warm-up does not favour one side.
      const order = round % 2 === 0 ? ids : [...ids].reverse();
      for (const id of order)
        samples.get(id)!.push(await measureInChild(id, ns, n, opts.kubeconfig, opts.clientGoBinary));
    }
    print('');
    print(
      `informer vs TypeScript peer: ${n} ConfigMaps on one apiserver, median of ${rounds} alternating rounds`,
    );
    print(
      `${'informer'.padEnd(48)} ${'sync s'.padStart(8)} ${'objects/s'.padStart(10)} ${'heap B/obj'.padStart(11)}`,
    );
    const medians = new Map<ContenderId, Sample>();
    for (const id of ids) {
      const name = names[id];
      const s = samples.get(id)!;
      const m = {
        seconds: median(s.map((x) => x.seconds)),
        heapBytesPerObject: median(s.map((x) => x.heapBytesPerObject)),
      };
      medians.set(id, m);
      const heap = Number.isFinite(m.heapBytesPerObject) ? String(Math.round(m.heapBytesPerObject)) : 'n/a';
      print(
        `${name.padEnd(48)} ${m.seconds.toFixed(3).padStart(8)} ${Math.round(n / m.seconds)
          .toString()
          .padStart(10)} ${heap.padStart(11)}`,
      );
    }
    const ourDefault = medians.get('oursStrip')!;
    const peer = medians.get('clientNode')!;
    print(
      `ratio ts-kcm/client-node: sync time ${(ourDefault.seconds / peer.seconds).toFixed(2)}x, heap per object ${(ourDefault.heapBytesPerObject / peer.heapBytesPerObject).toFixed(2)}x (below 1 is better)`,
    );
    const go = medians.get('clientGo');
    if (go)
      print(
        `ratio ts-kcm/client-go: sync time ${(ourDefault.seconds / go.seconds).toFixed(2)}x, heap per object ${(ourDefault.heapBytesPerObject / go.heapBytesPerObject).toFixed(2)}x`,
      );
    return Object.fromEntries(ids.map((id) => [names[id], medians.get(id)!]));
  } finally {
    await namespaces.delete(ns).catch(() => undefined);
    await (client as { close?: () => Promise<void> }).close?.();
  }
}

if (process.argv[2] === '--worker') {
  const [, , , id, ns, n, kubeconfig] = process.argv;
  await worker(id as ContenderId, ns!, Number(n), kubeconfig!);
}
