/**
 * The public SDK (`ts-kcm`) against the real apiserver: a controller over a CRD that sets a
 * condition and then ensures its finalizer, in one reconcile, without conflicting on its own
 * write; the finalizer patch still refuses to overwrite a list someone else created.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  createKubeClient,
  defineController,
  isNotFound,
  loadKubeConfig,
  Manager,
  resourceRef,
  type KubeObject,
  type ResourceRef,
} from '../../lib/index.js';
import { nopLogger } from '../../lib/log/index.js';
import { testKubeconfigPath, uniqueName, waitFor } from '../support/cluster.js';

interface Widget extends KubeObject {
  spec?: { size?: number };
  status?: { conditions?: { type: string; status: string; reason?: string; observedGeneration?: number }[] };
}

const CRDS: ResourceRef = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  resource: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};
const group = `${uniqueName('sdk')}.ts-kcm.io`;
const widgets = resourceRef<Widget>({
  group,
  version: 'v1',
  resource: 'widgets',
  kind: 'Widget',
  namespaced: false,
});
const FINALIZER = 'example.com/cleanup';

let client: ReturnType<typeof createKubeClient>;

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 100, burst: 200 });
  await client.resource(CRDS).create({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: 'Cluster',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  } as KubeObject);
  await waitFor(
    async () => {
      await client.resource(widgets).list();
      return true;
    },
    { timeoutMs: 30_000, description: 'the Widget CRD served' },
  );
}, 60_000);

afterAll(async () => {
  const rc = client.resource(widgets);
  for (const w of (await rc.list().catch(() => ({ items: [] as Widget[] }))).items) {
    await rc
      .patch(w.metadata.name!, { metadata: { finalizers: null } }, { type: 'merge' })
      .catch(() => undefined);
  }
  await client
    .resource(CRDS)
    .delete(`widgets.${group}`)
    .catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  await client.close();
}, 30_000);

describe('the SDK on the real apiserver', () => {
  it('setCondition then ensureFinalizer in one reconcile: both land, no conflict', async () => {
    const failures: string[] = [];
    const controller = defineController({
      name: 'widget-controller',
      for: widgets,
      writes: [
        { resource: widgets, verbs: ['patch'] },
        { resource: widgets, subresource: 'status', verbs: ['patch'] },
      ],
      async reconcile(_req, ctx) {
        const widget = ctx.get(); // the request's own object, typed Widget
        if (!widget) return;
        try {
          await ctx.setCondition(widget, { type: 'Ready', status: 'True', reason: 'Reconciled' });
          await ctx.ensureFinalizer(widget, FINALIZER);
        } catch (err) {
          failures.push(String(err));
          throw err;
        }
      },
    });
    const stop = new AbortController();
    const manager = new Manager(
      { leaderElect: false, metricsBindAddress: '0', healthProbeBindAddress: '0' },
      { client, definitions: [controller], logger: nopLogger() },
    );
    const done = manager.run(stop.signal);
    try {
      await client.resource(widgets).create({
        apiVersion: `${group}/v1`,
        kind: 'Widget',
        metadata: { name: 'w1' },
        spec: { size: 1 },
      });
      const got = await waitFor(
        async () => {
          const w = await client.resource(widgets).get('w1');
          const ready = w.status?.conditions?.find((c) => c.type === 'Ready');
          return w.metadata.finalizers?.includes(FINALIZER) && ready?.status === 'True' ? w : undefined;
        },
        { timeoutMs: 30_000, description: 'Ready condition and finalizer on w1' },
      );
      expect(got.metadata.finalizers).toEqual([FINALIZER]);
      expect(got.status?.conditions?.[0]?.observedGeneration).toBe(got.metadata.generation);
      expect(failures).toEqual([]);
    } finally {
      stop.abort();
      expect(await done).toBe(0);
    }
  }, 60_000);

  it('ensureFinalizer on a stale copy does not overwrite a finalizer list created meanwhile', async () => {
    const rc = client.resource(widgets);
    const stale = await rc.create({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w2' } });
    await rc.patch('w2', { metadata: { finalizers: ['someone.else/keep'] } }, { type: 'merge' });
    let seen: unknown;
    const controller = defineController({
      name: 'stale-controller',
      for: widgets,
      async reconcile(req, ctx) {
        // `stale` predates the other finalizer list: the guarded patch is refused (422), and
        // the helper then appends on the live object instead of overwriting its list.
        if (req.name === 'w2' && seen === undefined)
          seen = await ctx.ensureFinalizer(stale, FINALIZER).catch((err: unknown) => err);
      },
    });
    const stop = new AbortController();
    const manager = new Manager(
      { leaderElect: false, metricsBindAddress: '0', healthProbeBindAddress: '0' },
      { client, definitions: [controller], logger: nopLogger() },
    );
    const done = manager.run(stop.signal);
    try {
      await waitFor(() => seen !== undefined, { timeoutMs: 30_000, description: 'a reconcile of w2' });
      expect(seen).toBe(true);
      expect((await rc.get('w2')).metadata.finalizers).toEqual(['someone.else/keep', FINALIZER]);
    } finally {
      stop.abort();
      expect(await done).toBe(0);
    }
  }, 60_000);
});
