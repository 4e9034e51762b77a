/**
 * lib/informer against a real kube-apiserver: paginated LIST and WatchList of > 1,000
 * objects, bookmarks moving the resourceVersion, a resume from a compacted resourceVersion
 * (410 -> relist -> tombstone), an apiserver killed mid-watch, and a throwing handler.
 * The first two use the shared control plane; the last two a private one they may break.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeList, KubeObject } from '../../lib/api/index.js';
import {
  createKubeClient,
  isNotFound,
  loadKubeConfig,
  Resources,
  type ListOptions,
  type ResourceClient,
  type RestKubeClient,
  type WatchEvent,
  type WatchOptions,
} from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import {
  DefaultSharedIndexInformer,
  DeletedFinalStateUnknown,
  type ListWatcher,
  type SharedInformerOptions,
} from '../../lib/informer/index.js';
import { createLogger } from '../../lib/log/index.js';
import { newRegistry, type Registry } from '../../lib/metrics/index.js';
import { createTestNamespace, deleteNamespace, testKubeconfigPath, waitFor } from '../support/cluster.js';

jest.setTimeout(300_000);

const logger = createLogger({
  silent: process.env.TS_KCM_TEST_VERBOSE !== '1',
  verbosity: 4,
  format: 'text',
});

/**
 * Records the calls an informer makes and can cut it off from the apiserver (pause) while
 * the test changes things behind its back.
 */
class GatedListWatch implements ListWatcher {
  readonly lists: ListOptions[] = [];
  readonly watches: WatchOptions[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private readonly active = new Set<AbortController>();
  blocked = 0;

  constructor(private readonly inner: ResourceClient) {}

  pause(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
    for (const ac of this.active) ac.abort();
  }

  resume(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  private async pass(): Promise<void> {
    while (this.gate) {
      this.blocked++;
      await this.gate;
      this.blocked--;
    }
  }

  async list(opts: ListOptions = {}): Promise<KubeList> {
    await this.pass();
    this.lists.push({ ...opts });
    return this.inner.list(opts);
  }

  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        await self.pass();
        self.watches.push({ ...opts });
        const ac = new AbortController();
        const onAbort = () => ac.abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        self.active.add(ac);
        try {
          yield* self.inner.watch(opts, ac.signal);
        } finally {
          self.active.delete(ac);
          signal.removeEventListener('abort', onAbort);
        }
      },
    };
  }
}

/** What a handler has been told, as name -> resourceVersion, plus its tombstones. */
class StateHandler {
  readonly state = new Map<string, string>();
  readonly tombstones: string[] = [];
  readonly deletes: string[] = [];
  adds = 0;
  onAdd(o: KubeObject): void {
    this.adds++;
    this.state.set(o.metadata.name!, o.metadata.resourceVersion!);
  }
  onUpdate(_old: KubeObject, o: KubeObject): void {
    this.state.set(o.metadata.name!, o.metadata.resourceVersion!);
  }
  onDelete(o: KubeObject | DeletedFinalStateUnknown): void {
    if (o instanceof DeletedFinalStateUnknown) {
      this.tombstones.push(o.obj.metadata.name!);
      this.state.delete(o.obj.metadata.name!);
    } else {
      this.deletes.push(o.metadata.name!);
      this.state.delete(o.metadata.name!);
    }
  }
}

function configMap(
  ns: string,
  name: string,
  labels: Record<string, string>,
  data: Record<string, string> = {},
): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: ns, name, labels }, ...{ data } };
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

function informerOn(lw: ListWatcher, registry: Registry, opts: Partial<SharedInformerOptions<KubeObject>>) {
  return new DefaultSharedIndexInformer(Resources.configmaps, lw, { logger, registry, ...opts });
}

async function counterValue(registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

async function serverState(
  client: RestKubeClient,
  ns: string,
  labelSelector?: string,
): Promise<Map<string, string>> {
  const list = await client.resource(Resources.configmaps).list({ namespace: ns, labelSelector });
  return new Map(list.items.map((o) => [o.metadata.name!, o.metadata.resourceVersion!]));
}

function storeState(informer: DefaultSharedIndexInformer): Map<string, string> {
  return new Map(
    informer
      .getIndexer()
      .list()
      .map((o) => [o.metadata.name!, o.metadata.resourceVersion!]),
  );
}

describe('informer on the shared control plane', () => {
  const COUNT = 1_100;
  let client: RestKubeClient;
  let ns: string;
  let quietNs: string;
  const ac = new AbortController();

  beforeAll(async () => {
    client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), {
      qps: -1,
      userAgent: 'ts-kcm-informer-test',
    });
    ns = await createTestNamespace('informer-list');
    quietNs = await createTestNamespace('informer-quiet');
    const cms = client.resource(Resources.configmaps);
    const names = Array.from({ length: COUNT }, (_, i) => `cm-${String(i).padStart(4, '0')}`);
    await inParallel(names, 16, (name) => cms.create(configMap(ns, name, { bulk: 'yes' }, { k: name })));
  });

  afterAll(async () => {
    ac.abort();
    await deleteNamespace(ns);
    await deleteNamespace(quietNs);
    await client.close();
  });

  it('lists > 1,000 ConfigMaps in pages of 500, and keeps delivering when a handler throws', async () => {
    const registry = newRegistry();
    const lw = new GatedListWatch(client.resource(Resources.configmaps));
    const informer = informerOn(lw, registry, {
      namespace: ns,
      labelSelector: 'bulk=yes',
      reflector: { useWatchList: false },
    });
    informer.addEventHandler({
      onAdd: () => {
        throw new Error('handler bug');
      },
    });
    const h = new StateHandler();
    const reg = informer.addEventHandler(h);
    void informer.run(ac.signal);
    await informer.whenSynced();
    expect(informer.getIndexer().listKeys().length).toBe(COUNT);
    expect(lw.lists.map((l) => [l.limit, l.continue ? 'token' : '-'])).toEqual([
      [500, '-'],
      [500, 'token'],
      [500, 'token'],
    ]);
    await waitFor(() => lw.watches.length > 0, { description: 'watch started' });
    expect(lw.watches[0]?.resourceVersion).toBe(informer.lastSyncResourceVersion());
    expect(lw.watches[0]?.allowWatchBookmarks).toBe(true);
    await waitFor(() => reg.hasSynced(), { description: 'handler synced' });

    const extra = await client.resource(Resources.configmaps).create(configMap(ns, 'extra', { bulk: 'yes' }));
    await waitFor(() => h.state.get('extra') === extra.metadata.resourceVersion, {
      description: 'extra delivered',
    });
    expect(h.adds).toBe(COUNT + 1);
    await waitFor(async () => (await counterValue(registry, 'informer_handler_errors_total')) === COUNT + 1, {
      description: 'every throw counted',
    });
    // managedFields were stripped before storing.
    expect(informer.getIndexer().get(`${ns}/extra`)?.metadata.managedFields).toBeUndefined();
  });

  it('gets the same state from a WatchList stream without any LIST', async () => {
    const lw = new GatedListWatch(client.resource(Resources.configmaps));
    const informer = informerOn(lw, newRegistry(), { namespace: ns, labelSelector: 'bulk=yes' });
    void informer.run(ac.signal);
    await informer.whenSynced();
    expect(lw.lists).toEqual([]);
    expect(lw.watches[0]).toMatchObject({
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
      allowWatchBookmarks: true,
    });
    expect(storeState(informer)).toEqual(await serverState(client, ns, 'bulk=yes'));
  });

  it('caches only metadata for a metadata-only informer', async () => {
    const lw = new GatedListWatch(client.resource(Resources.configmaps));
    const informer = informerOn(lw, newRegistry(), {
      namespace: ns,
      labelSelector: 'bulk=yes',
      metadataOnly: true,
    });
    void informer.run(ac.signal);
    await informer.whenSynced();
    expect(lw.watches[0]).toMatchObject({ metadataOnly: true });
    const one = informer.getIndexer().get(`${ns}/cm-0000`) as KubeObject & { data?: unknown };
    expect(one.metadata.name).toBe('cm-0000');
    expect(one.data).toBeUndefined();
    expect(one.metadata.managedFields).toBeUndefined();
    expect(informer.getIndexer().listKeys().length).toBe((await serverState(client, ns, 'bulk=yes')).size);
  });

  it('moves its resourceVersion on bookmarks while its own namespace stays quiet', async () => {
    const lw = new GatedListWatch(client.resource(Resources.configmaps));
    // The apiserver sends a bookmark about once a minute on every watch that allows them.
    const informer = informerOn(lw, newRegistry(), {
      namespace: quietNs,
      reflector: { useWatchList: false, minWatchTimeoutSeconds: 5, maxWatchTimeoutSeconds: 5 },
    });
    const h = new StateHandler();
    informer.addEventHandler(h);
    void informer.run(ac.signal);
    await informer.whenSynced();
    const before = Number(informer.lastSyncResourceVersion());
    const elsewhere = await client.resource(Resources.configmaps).create(configMap(ns, 'elsewhere', {}));
    const target = Number(elsewhere.metadata.resourceVersion);
    expect(target).toBeGreaterThan(before);
    await waitFor(() => Number(informer.lastSyncResourceVersion()) >= target, {
      timeoutMs: 90_000,
      description: 'bookmark RV',
    });
    expect(h.adds).toBe(0);
    expect(informer.getIndexer().listKeys()).toEqual([]);
    // Every watch after the first resumed from a bookmark's resourceVersion, none relisted.
    expect(lw.lists.length).toBe(1);
  });
});

describe('informer on a private control plane', () => {
  let cp: ControlPlane;
  let client: RestKubeClient;
  const ns = 'informer-private';
  const ac = new AbortController();

  beforeAll(async () => {
    cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-informer-')), logger });
    client = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), {
      qps: -1,
      userAgent: 'ts-kcm-informer-test',
    });
    await client
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }, 240_000);

  afterAll(async () => {
    ac.abort();
    await client?.close();
    await cp?.stop();
  });

  /** SIGKILL and restart kube-apiserver (ControlPlane retries while its port is still bound). */
  const restartApiserver = (): Promise<void> => cp.restartApiserver();

  async function compactEtcd(): Promise<number> {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${cp.etcdClientURL}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { header?: { revision?: string } };
    };
    const range = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64'), count_only: true });
    const revision = Number(range.header?.revision);
    await post('/v3/kv/compaction', { revision, physical: true });
    return revision;
  }

  it('relists after resuming from a compacted resourceVersion and reports the missed delete as a tombstone', async () => {
    const cms = client.resource(Resources.configmaps);
    const labels = { case: 'gone' };
    for (const name of ['keep', 'change', 'remove']) await cms.create(configMap(ns, name, labels));
    const lw = new GatedListWatch(cms);
    const registry = newRegistry();
    const informer = informerOn(lw, registry, { namespace: ns, labelSelector: 'case=gone' });
    const h = new StateHandler();
    informer.addEventHandler(h);
    void informer.run(ac.signal);
    await informer.whenSynced();
    await waitFor(() => h.state.size === 3, { description: 'initial adds' });

    // Cut the informer off, change things behind its back, and make its resume point unservable.
    lw.pause();
    await waitFor(() => lw.blocked > 0, { description: 'informer blocked' });
    const staleRV = informer.lastSyncResourceVersion();
    await cms.delete('remove', { namespace: ns });
    const changed = await cms.patch('change', { data: { v: '2' } }, { type: 'merge', namespace: ns });
    const added = await cms.create(configMap(ns, 'new', labels));
    // Churn elsewhere so the compaction point is well past the informer's RV.
    for (let i = 0; i < 20; i++) await cms.create(configMap(ns, `churn-${i}`, {}));
    const revision = await compactEtcd();
    expect(revision).toBeGreaterThan(Number(staleRV));
    await restartApiserver(); // a fresh watch cache cannot serve the old RV either
    const relistsBefore = informer.stats().relists;
    lw.resume();

    await waitFor(() => h.tombstones.includes('remove'), {
      timeoutMs: 120_000,
      description: 'tombstone for remove',
    });
    expect(h.deletes).toEqual([]);
    expect(informer.stats().relists).toBeGreaterThan(relistsBefore);
    await waitFor(() => h.state.get('new') === added.metadata.resourceVersion, { description: 'new' });
    expect(h.state).toEqual(
      new Map([
        ['keep', h.state.get('keep')!],
        ['change', changed.metadata.resourceVersion!],
        ['new', added.metadata.resourceVersion!],
      ]),
    );
    expect(storeState(informer)).toEqual(await serverState(client, ns, 'case=gone'));
    expect(await counterValue(registry, 'informer_watch_errors_total')).toBeGreaterThan(0);
  });

  it('recovers from kube-apiserver being killed mid-watch without missing any change', async () => {
    const cms = client.resource(Resources.configmaps);
    const labels = { case: 'restart' };
    const informer = informerOn(cms, newRegistry(), { namespace: ns, labelSelector: 'case=restart' });
    const h = new StateHandler();
    informer.addEventHandler(h);
    void informer.run(ac.signal);
    await informer.whenSynced();

    // A writer that keeps changing objects through the outage; failed writes just retry later.
    let stop = false;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `w-${i % 10}`;
        try {
          if (i >= 10 && i % 7 === 0) await cms.delete(name, { namespace: ns });
          else {
            try {
              await cms.patch(name, { data: { i: String(i) } }, { type: 'merge', namespace: ns });
            } catch (err) {
              if (!isNotFound(err)) throw err;
              await cms.create(configMap(ns, name, labels, { i: String(i) }));
            }
          }
          written++;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await waitFor(() => written >= 20, { description: 'writes before the crash' });
      await restartApiserver();
      const afterRestart = written;
      await waitFor(() => written >= afterRestart + 20, {
        timeoutMs: 60_000,
        description: 'writes after the restart',
      });
    } finally {
      stop = true;
      await writer;
    }

    const truth = await serverState(client, ns, 'case=restart');
    expect(truth.size).toBeGreaterThan(0);
    await waitFor(
      () => JSON.stringify([...storeState(informer)].sort()) === JSON.stringify([...truth].sort()),
      {
        timeoutMs: 90_000,
        description: 'store equals server',
      },
    );
    await informer.whenHandlersIdle();
    expect(h.state).toEqual(truth);
    expect(informer.stats().errors).toBeGreaterThan(0);
  });
});
