/**
 * Informer benchmark: how fast an informer fills its cache, and what each cached object
 * costs on the heap with and without the default managedFields-stripping transform.
 *
 * - in-memory: a ListWatcher serving N ConfigMaps shaped like the apiserver's (parsed from
 *   JSON page by page, managedFields included) measures our own pipeline: transform, store,
 *   indexes, fan-out to one handler.
 * - apiserver (when a kubeconfig is given): N real ConfigMaps in a fresh namespace, synced
 *   once by paginated LIST and once by a WatchList stream, end to end over HTTP.
 *
 * Run through `npm run bench` (the lead's runner imports runInformerBench), or directly:
 * `node --expose-gc dist/test/bench/informer.bench.js [objects] [kubeconfig]`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import type { KubeList, KubeObject } from '../../lib/api/index.js';
import type { KubeClient, ListOptions, WatchEvent, WatchOptions } from '../../lib/client/index.js';
import { createKubeClient, loadKubeConfig, Resources } from '../../lib/client/index.js';
import type { ListWatcher } from '../../lib/informer/index.js';
import {
  DefaultSharedIndexInformer,
  IDENTITY_TRANSFORM,
  STRIP_MANAGED_FIELDS,
} from '../../lib/informer/index.js';

export interface InformerBenchOptions {
  /** Objects served by the in-memory ListWatcher. Default 20,000. */
  objects?: number;
  /** A kubeconfig to also measure against a real apiserver; omitted: in-memory only. */
  kubeconfig?: string;
  /** ConfigMaps created on the apiserver. Default 2,000. */
  apiserverObjects?: number;
  /** Where the table goes. Default console.log. */
  print?: (line: string) => void;
}

export interface InformerBenchResult {
  scenario: string;
  objects: number;
  seconds: number;
  objectsPerSecond: number;
  /** Heap growth per cached object after a full GC (NaN when GC could not be forced). */
  heapBytesPerObject: number;
  note: string;
}

const PAGE = 500;

/** A ConfigMap as a client's create/update leaves it: two data keys, labels, one managedFields entry. */
function configMapJSON(ns: string, i: number): string {
  const name = `bench-${String(i).padStart(6, '0')}`;
  return JSON.stringify({
    metadata: {
      name,
      namespace: ns,
      uid: `4f0c2a57-${String(i).padStart(4, '0').slice(-4)}-4c3e-9a51-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { app: 'bench', shard: String(i % 16) },
      managedFields: [
        {
          manager: 'ts-kcm-bench',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2026-01-01T00:00:00Z',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:data': { '.': {}, 'f:config.yaml': {}, 'f:version': {} },
            'f:metadata': { 'f:labels': { '.': {}, 'f:app': {}, 'f:shard': {} } },
          },
        },
      ],
    },
    data: {
      'config.yaml': `replicas: ${i % 5}\nimage: registry.example/app:${i}\nlogLevel: info\n`,
      version: String(i),
    },
  });
}

/** Serves `n` ConfigMaps in pages, each parsed fresh (as the HTTP client would), then an idle watch. */
class SyntheticListWatch implements ListWatcher {
  constructor(private readonly n: number) {}

  async list(opts: ListOptions = {}): Promise<KubeList> {
    const start = opts.continue ? Number(opts.continue) : 0;
    const end = Math.min(this.n, start + (opts.limit ?? this.n));
    const parts: string[] = [];
    for (let i = start; i < end; i++) parts.push(configMapJSON('bench', i));
    const items = JSON.parse(`[${parts.join(',')}]`) as KubeObject[];
    return {
      metadata: { resourceVersion: String(1000 + this.n), continue: end < this.n ? String(end) : undefined },
      items,
    };
  }

  watch(_opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const idle = new Promise<IteratorResult<WatchEvent>>((resolve) =>
      signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true }),
    );
    return { [Symbol.asyncIterator]: () => ({ next: () => idle }) };
  }
}

function gcFunction(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function heapUsed(gc: (() => void) | undefined): number {
  if (!gc) return NaN;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function syncOnce(
  name: string,
  lw: ListWatcher,
  n: number,
  opts: { strip: boolean; useWatchList: boolean; namespace?: string },
  gc: (() => void) | undefined,
  note: string,
): Promise<InformerBenchResult> {
  // Let the previous scenario's informer finish unwinding: pending callbacks still reference it.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  const before = heapUsed(gc);
  const ac = new AbortController();
  const informer = new DefaultSharedIndexInformer(Resources.configmaps, lw, {
    namespace: opts.namespace,
    transform: opts.strip ? STRIP_MANAGED_FIELDS : IDENTITY_TRANSFORM,
    reflector: { useWatchList: opts.useWatchList },
  });
  let delivered = 0;
  informer.addEventHandler({ onAdd: () => void delivered++ });
  const start = performance.now();
  const running = informer.run(ac.signal);
  await informer.whenSynced();
  await informer.whenHandlersIdle();
  const seconds = (performance.now() - start) / 1000;
  const cached = informer.getIndexer().listKeys().length;
  const after = heapUsed(gc); // the informer is alive here: this is what its cache holds
  ac.abort();
  await running;
  if (cached !== n || delivered !== n)
    throw new Error(`${name}: cached ${cached}, delivered ${delivered}, expected ${n}`);
  return {
    scenario: name,
    objects: n,
    seconds,
    objectsPerSecond: n / seconds,
    heapBytesPerObject: (after - before) / n,
    note,
  };
}

async function createConfigMaps(client: KubeClient, ns: string, n: number): Promise<void> {
  const cms = client.resource(Resources.configmaps);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const obj = JSON.parse(configMapJSON(ns, next++)) as KubeObject;
        delete obj.metadata.managedFields;
        delete obj.metadata.uid;
        delete obj.metadata.resourceVersion;
        delete obj.metadata.creationTimestamp;
        await cms.create({ apiVersion: 'v1', kind: 'ConfigMap', ...obj });
      }
    }),
  );
}

export async function runInformerBench(opts: InformerBenchOptions = {}): Promise<InformerBenchResult[]> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const n = opts.objects ?? 20_000;
  const gc = gcFunction();
  const results: InformerBenchResult[] = [];
  const synthetic = new SyntheticListWatch(n);
  results.push(
    await syncOnce(
      'in-memory LIST, strip managedFields',
      synthetic,
      n,
      { strip: true, useWatchList: false },
      gc,
      `pages of ${PAGE}`,
    ),
  );
  results.push(
    await syncOnce(
      'in-memory LIST, keep managedFields',
      synthetic,
      n,
      { strip: false, useWatchList: false },
      gc,
      'identity transform',
    ),
  );

  if (opts.kubeconfig) {
    const m = opts.apiserverObjects ?? 2_000;
    const client = createKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }), {
      qps: -1,
      userAgent: 'ts-kcm-bench',
    });
    const ns = `informer-bench-${Date.now().toString(36)}`;
    await client
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    try {
      const t0 = performance.now();
      await createConfigMaps(client, ns, m);
      const createNote = `created in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
      const cms = client.resource(Resources.configmaps);
      results.push(
        await syncOnce(
          'apiserver LIST, strip',
          cms,
          m,
          { strip: true, useWatchList: false, namespace: ns },
          gc,
          createNote,
        ),
      );
      results.push(
        await syncOnce(
          'apiserver LIST, keep',
          cms,
          m,
          { strip: false, useWatchList: false, namespace: ns },
          gc,
          '',
        ),
      );
      results.push(
        await syncOnce(
          'apiserver WatchList, strip',
          cms,
          m,
          { strip: true, useWatchList: true, namespace: ns },
          gc,
          'sendInitialEvents',
        ),
      );
    } finally {
      await client
        .resource(Resources.namespaces)
        .delete(ns)
        .catch(() => undefined);
      await (client as { close?: () => Promise<void> }).close?.();
    }
  }

  print('');
  print('informer: cache fill throughput and heap per cached ConfigMap');
  print(
    `${'scenario'.padEnd(40)} ${'objects'.padStart(8)} ${'seconds'.padStart(8)} ${'objects/s'.padStart(10)} ${'heap B/obj'.padStart(11)}  note`,
  );
  for (const r of results) {
    const heap = Number.isFinite(r.heapBytesPerObject) ? Math.round(r.heapBytesPerObject).toString() : 'n/a';
    print(
      `${r.scenario.padEnd(40)} ${String(r.objects).padStart(8)} ${r.seconds.toFixed(3).padStart(8)} ${Math.round(r.objectsPerSecond).toString().padStart(10)} ${heap.padStart(11)}  ${r.note}`,
    );
  }
  const strip = results[0]?.heapBytesPerObject ?? NaN;
  const keep = results[1]?.heapBytesPerObject ?? NaN;
  if (Number.isFinite(strip) && Number.isFinite(keep)) {
    print(
      `stripping managedFields saves ${Math.round(keep - strip)} B per object (${Math.round((100 * (keep - strip)) / keep)}%)`,
    );
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const objects = process.argv[2] ? Number(process.argv[2]) : undefined;
  await runInformerBench({ objects, kubeconfig: process.argv[3] });
}
