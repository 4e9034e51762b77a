import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../api/index.js';
import { FakeKubeClient, Resources } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import type { Controller } from '../controller/controller.js';
import type { ControllerContext } from '../controller/types.js';
import { FakeEventRecorder } from '../events/index.js';
import { DefaultSharedInformerFactory } from '../informer/factory.js';
import type { InformerShard } from '../informer/types.js';
import { nopLogger } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import { namespaceShardKey } from '../sharding/controller.js';
import { fakeSharding } from '../sharding/testing.js';
import { controllingOwnerKeys, defineController, generationChanged, rulesOf } from './define.js';
import { resourceRef } from './resource.js';
import { reconcileOnce } from './testing.js';

const widgets = resourceRef({
  group: 'example.com',
  version: 'v1',
  resource: 'widgets',
  kind: 'Widget',
  namespaced: true,
});

interface Widget extends KubeObject {
  status?: {
    conditions?: {
      type: string;
      status: 'True' | 'False' | 'Unknown';
      reason?: string;
      message?: string;
      observedGeneration?: number;
      lastTransitionTime?: string;
    }[];
  };
}

function widget(extra: Partial<Widget['metadata']> = {}, status?: Widget['status']): Widget {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: { name: 'w', namespace: 'ns', uid: 'u1', generation: 2, resourceVersion: '7', ...extra },
    ...(status ? { status } : {}),
  };
}

const ready = defineController<Widget>({
  name: 'widget-controller',
  for: widgets,
  owns: [Resources.configmaps],
  watches: [{ resource: Resources.namespaces, map: () => [] }],
  writes: [{ resource: widgets, subresource: 'status', verbs: ['patch'] }],
  async reconcile({ object }, ctx) {
    if (object) await ctx.setCondition(object, { type: 'Ready', status: 'True', reason: 'Reconciled' });
  },
});

describe('defineController', () => {
  it('derives least-privilege rules: reads of for/owns/watches, declared writes, events', () => {
    expect(ready.rbac).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['list', 'watch'] },
      { apiGroups: ['example.com'], resources: ['widgets/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
    expect(ready.enabledByDefault).toBe(true);
    expect(ready.flags).toEqual([]);
  });

  it('a workers flag becomes a controller flag with its default', () => {
    const def = defineController({
      name: 'w2',
      for: widgets,
      workers: { flag: 'concurrent-widget-syncs', default: 5 },
      reconcile: async () => undefined,
    });
    expect(def.flags).toEqual([
      expect.objectContaining({ name: 'concurrent-widget-syncs', defaultValue: 5 }),
    ]);
  });

  it('refuses a name that is not a DNS-1123 label and a writes entry without verbs', () => {
    expect(() =>
      defineController({ name: 'Bad_Name', for: widgets, reconcile: async () => undefined }),
    ).toThrow(/DNS-1123/);
    expect(() => rulesOf({ for: widgets, writes: [{ resource: widgets, verbs: [] }] })).toThrow(/no verbs/);
  });

  it('maps an owned object to its controlling owner of the primary kind only', () => {
    const child: KubeObject = {
      metadata: {
        name: 'c',
        namespace: 'ns',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Widget', name: 'not-this-group', uid: 'x', controller: true },
          { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'u1', controller: true },
        ],
      },
    };
    expect(controllingOwnerKeys(child, widgets)).toEqual(['ns/w']);
    expect(controllingOwnerKeys({ metadata: { name: 'lonely', namespace: 'ns' } }, widgets)).toEqual([]);
  });

  it('generationChanged ignores status-only updates', () => {
    const p = generationChanged<Widget>();
    expect(p(undefined, widget())).toBe(true);
    expect(p(widget(), widget({ resourceVersion: '8' }))).toBe(false);
    expect(p(widget(), widget({ generation: 3 }))).toBe(true);
  });
});

describe('reconcile helpers, by recorded API actions', () => {
  it('setCondition: one server-side apply on status with observedGeneration; none when already so', async () => {
    const client = new FakeKubeClient([], { resources: [widgets] });
    const clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
    await reconcileOnce(ready, { client, objects: [widget()], key: 'ns/w', clock });
    expect(client.writeActions()).toEqual([
      expect.objectContaining({
        verb: 'patch',
        resource: 'widgets',
        namespace: 'ns',
        name: 'w',
        subresource: 'status',
        patchType: 'apply',
        fieldManager: 'widget-controller',
        force: true,
        body: {
          apiVersion: 'example.com/v1',
          kind: 'Widget',
          metadata: { name: 'w', namespace: 'ns' },
          status: {
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'Reconciled',
                lastTransitionTime: '2026-01-02T03:04:05Z',
                observedGeneration: 2,
              },
            ],
          },
        },
      }),
    ]);
    const settled = new FakeKubeClient([], { resources: [widgets] });
    const already = widget(
      {},
      { conditions: [{ type: 'Ready', status: 'True', reason: 'Reconciled', observedGeneration: 2 }] },
    );
    await reconcileOnce(ready, { client: settled, objects: [already], key: 'ns/w', clock });
    expect(settled.writeActions()).toEqual([]);
  });

  it('ensureFinalizer / removeFinalizer patch by JSON patch, guarded, and skip when nothing to do', async () => {
    const fin = defineController<Widget>({
      name: 'fin',
      for: widgets,
      async reconcile({ object }, ctx) {
        if (!object) return;
        if (object.metadata.deletionTimestamp) await ctx.removeFinalizer(object, 'example.com/cleanup');
        else await ctx.ensureFinalizer(object, 'example.com/cleanup');
      },
    });
    const client = new FakeKubeClient([], { resources: [widgets] });
    await reconcileOnce(fin, { client, objects: [widget()], key: 'ns/w' });
    expect(client.writeActions().map((a) => [a.patchType, a.body])).toEqual([
      [
        'json',
        [
          { op: 'test', path: '/metadata/finalizers', value: null },
          { op: 'add', path: '/metadata/finalizers', value: ['example.com/cleanup'] },
        ],
      ],
    ]);
    client.clearActions();
    const deleting = widget({
      name: 'd',
      finalizers: ['other', 'example.com/cleanup'],
      deletionTimestamp: '2026-01-01T00:00:00Z',
    });
    await reconcileOnce(fin, { client, objects: [deleting], key: 'ns/d' });
    expect(client.writeActions().map((a) => a.body)).toEqual([
      [
        { op: 'test', path: '/metadata/finalizers/1', value: 'example.com/cleanup' },
        { op: 'remove', path: '/metadata/finalizers/1' },
      ],
    ]);
    client.clearActions();
    await reconcileOnce(fin, {
      client,
      objects: [widget({ name: 'x', finalizers: ['example.com/cleanup'] })],
      key: 'ns/x',
    });
    expect(client.writeActions()).toEqual([]);
  });

  it('a reconcile that sets a condition and then ensures the finalizer does not conflict on its own write', async () => {
    const both = defineController<Widget>({
      name: 'both',
      for: widgets,
      async reconcile({ object }, ctx) {
        if (!object) return;
        await ctx.setCondition(object, { type: 'Ready', status: 'True', reason: 'Reconciled' });
        await ctx.ensureFinalizer(object, 'example.com/cleanup');
      },
    });
    const client = new FakeKubeClient([], { resources: [widgets] });
    await reconcileOnce(both, { client, objects: [widget()], key: 'ns/w' });
    const stored = await client.resource<Widget>(widgets).get('w', 'ns');
    expect(stored.metadata.finalizers).toEqual(['example.com/cleanup']);
    expect(stored.status?.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });

  it('ensureFinalizer on a cache copy that is behind (the list exists by now) appends on the live object instead of failing', async () => {
    const fin = defineController<Widget>({
      name: 'fin',
      for: widgets,
      async reconcile({ object }, ctx) {
        if (object) await ctx.ensureFinalizer(object, 'example.com/cleanup');
      },
    });
    // Another writer adds a finalizers list just before our patch lands: the cache's copy
    // has none, the apiserver then has ['other'].
    const client = new FakeKubeClient([], { resources: [widgets] });
    let raced = false;
    client.prependReactor('patch', 'widgets', () => {
      if (!raced) {
        raced = true;
        client.tracker.add(widget({ finalizers: ['other'] }));
      }
      return undefined; // fall through to the tracker, which now fails the guard (422)
    });
    await reconcileOnce(fin, { client, objects: [widget()], key: 'ns/w' });
    const stored = await client.resource<Widget>(widgets).get('w', 'ns');
    expect(stored.metadata.finalizers).toEqual(['other', 'example.com/cleanup']);
    expect(client.actions.map((a) => a.verb).filter((v) => v !== 'list' && v !== 'watch')).toEqual([
      'patch',
      'get',
      'patch',
      'get',
    ]); // the last get is this test's own
  });

  it('ctx.get() is the request object, ctx.list() the cache; ownerReference fills apiVersion/kind from the ref', async () => {
    const seen: unknown[] = [];
    const typed = resourceRef<Widget>({ ...widgets });
    const def = defineController({
      name: 'typed',
      for: typed,
      async reconcile(req, ctx) {
        // Type-level: the ref's T flows into get/list and the request's object.
        const own: Widget | undefined = ctx.get();
        const all: Widget[] = ctx.list('ns');
        const status: Widget['status'] = req.object?.status;
        const bare = { metadata: { ...own!.metadata } };
        seen.push(
          own?.metadata.name,
          ctx.get('ns/other')?.metadata.name,
          all.length,
          status,
          ctx.ownerReference(bare),
        );
      },
    });
    const other = widget({ name: 'other', uid: 'u2' });
    await reconcileOnce(def, {
      client: new FakeKubeClient([], { resources: [widgets] }),
      objects: [widget(), other],
      key: 'ns/w',
    });
    expect(seen).toEqual([
      'w',
      'other',
      2,
      undefined,
      {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        name: 'w',
        uid: 'u1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    const client = new FakeKubeClient([], { resources: [widgets] });
    const rc = client.resource(typed);
    const created: Widget = await rc.create(widget({ resourceVersion: undefined }));
    expect(created.metadata.name).toBe('w');
  });

  it('reconcile gets the key split and undefined for a deleted object', async () => {
    const seen: unknown[] = [];
    const def = defineController({
      name: 'spy',
      for: widgets,
      async reconcile(req) {
        seen.push([req.namespace, req.name, req.key, req.object]);
      },
    });
    await reconcileOnce(def, { client: new FakeKubeClient([], { resources: [widgets] }), key: 'ns/gone' });
    expect(seen).toEqual([['ns', 'gone', 'ns/gone', undefined]]);
  });
});

describe('ReconcileContext.cache and metrics', () => {
  it('reads the cache of a watched resource, refuses an undeclared one, and has a registry', async () => {
    const seen: unknown[] = [];
    const def = defineController({
      name: 'cache-spy',
      for: widgets,
      watches: [{ resource: Resources.namespaces, map: () => [] }],
      async reconcile(_req, ctx) {
        seen.push(ctx.cache(Resources.namespaces).get('team-a')?.metadata.name);
        seen.push(ctx.cache(Resources.namespaces).list().length);
        expect(() => ctx.cache(Resources.pods)).toThrow(/only resources in for, owns or watches/);
        seen.push(typeof ctx.metrics.getSingleMetric);
      },
    });
    await reconcileOnce(def, {
      client: new FakeKubeClient([], { resources: [widgets] }),
      objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } }],
      key: 'ns/w',
    });
    expect(seen).toEqual(['team-a', 1, 'function']);
  });
});

describe('sharding by namespace with a primary cache of the owned share (KEP-5866)', () => {
  it('declares a namespace field, and refuses a cluster-scoped primary', () => {
    const def = defineController({
      name: 'w',
      for: widgets,
      sharding: { by: 'namespace', primaryCache: 'owned' },
      reconcile: async () => undefined,
    });
    expect(def.sharding).toEqual({
      shardable: true,
      shardKey: namespaceShardKey,
      shardField: 'object.metadata.namespace',
      primaryCache: 'owned',
      reason: expect.any(String),
    });
    expect(() =>
      defineController({
        name: 'n',
        for: Resources.namespaces,
        sharding: { by: 'namespace', primaryCache: 'owned' },
        reconcile: async () => undefined,
      }),
    ).toThrow('defineController n: sharding by namespace needs a namespaced `for`');
  });

  it('builds its primary informer on ctx.sharding.primaryShard; ctx.get and ctx.cache(for) read that cache', async () => {
    const clock = new FakeClock();
    const client = new FakeKubeClient([], { clock, resources: [widgets] });
    const informers = new DefaultSharedInformerFactory(client, { clock });
    const primaryShard: InformerShard = {
      name: 'sharding/w',
      current: () => ({ selector: 'x', admits: () => true }),
      subscribe: () => () => undefined,
      listed: () => undefined,
    };
    const seen: string[] = [];
    const def = defineController<Widget>({
      name: 'w',
      for: widgets,
      sharding: { by: 'namespace', primaryCache: 'owned' },
      reconcile: async ({ key }, ctx) => {
        seen.push(`${ctx.get()?.metadata.name} ${ctx.cache<Widget>(widgets).get(key)?.metadata.name}`);
      },
    });
    const ctx: ControllerContext = {
      client,
      informers,
      eventRecorder: () => new FakeEventRecorder(),
      logger: nopLogger(),
      metrics: newRegistry(),
      clock,
      flags: {},
      sharding: { ...fakeSharding(['ns/w']).sharding, primaryShard },
    };
    const runner = def.create(ctx) as Controller;
    expect(informers.all()).toHaveLength(1);
    const sharded = informers.informerFor<Widget>(widgets, { shard: primaryShard });
    expect(informers.all()).toEqual([sharded]);
    sharded.getIndexer().add(widget());
    runner.queue.add('ns/w');
    await runner.processNextWorkItem();
    expect(seen).toEqual(['w w']);
    expect(informers.all()).toHaveLength(1); // ctx.cache(for) did not make an unfiltered informer
  });
});

describe('resourceRef', () => {
  it('names the bad field', () => {
    expect(() => resourceRef({ ...widgets, resource: 'Widgets' })).toThrow(/lower-case plural/);
    expect(() => resourceRef({ ...widgets, version: '1' })).toThrow(/API version/);
    expect(() => resourceRef({ ...widgets, kind: 'widget' })).toThrow(/UpperCamelCase/);
    expect(() => resourceRef({ ...widgets, group: 'Example' })).toThrow(/DNS subdomain/);
  });
});
