/**
 * lib/client against the real kube-apiserver that globalSetup started: CRUD, conflicts,
 * every patch type, pagination, metadata-only reads, watches, RBAC errors and metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../lib/api/index.js';
import {
  ApiError,
  applyPatch,
  createKubeClient,
  isAlreadyExists,
  isConflict,
  isForbidden,
  isInvalid,
  isNotFound,
  jsonPatch,
  KubeConfig,
  loadKubeConfig,
  mergePatch,
  Resources,
  retryOnConflict,
  strategicMergePatch,
  type ResourceRef,
  type RestKubeClient,
  type WatchEvent,
} from '../../lib/client/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { createTestNamespace, deleteNamespace, testKubeconfigPath } from '../support/cluster.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const serviceAccounts: ResourceRef = {
  group: '',
  version: 'v1',
  resource: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
};

const registry = newRegistry();
let client: RestKubeClient;
let ns: string;
const cleanup: RestKubeClient[] = [];

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), {
    registry,
    userAgent: 'ts-kcm-client-test',
  });
  cleanup.push(client);
  ns = await createTestNamespace('client');
});

afterAll(async () => {
  if (ns) await deleteNamespace(ns);
  for (const c of cleanup) await c.close();
});

const cm = (name: string, data: Record<string, string> = {}, labels?: Record<string, string>): ConfigMap => ({
  metadata: { name, namespace: ns, labels },
  data,
});

describe('client against kube-apiserver', () => {
  it('reports the server version', async () => {
    const v = await client.serverVersion();
    expect(v.gitVersion).toMatch(/^v1\.\d+\.\d+/);
  });

  it('creates, reads, updates, lists and deletes', async () => {
    const cms = client.resource<ConfigMap>(Resources.configmaps);
    const created = await cms.create(cm('crud', { a: '1' }));
    expect(created.metadata.uid).toBeTruthy();
    expect(created.metadata.namespace).toBe(ns);
    const got = await cms.get('crud', ns);
    expect(got.data).toEqual({ a: '1' });
    const updated = await cms.update({ ...got, data: { a: '2' } });
    expect(updated.metadata.resourceVersion).not.toBe(got.metadata.resourceVersion);
    const list = await cms.list({ namespace: ns, fieldSelector: 'metadata.name=crud' });
    expect(list.items.map((i) => i.data)).toEqual([{ a: '2' }]);
    await cms.delete('crud', { namespace: ns, preconditions: { uid: created.metadata.uid } });
    const err = await cms.get('crud', ns).catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
    expect((err as ApiError).message).toBe('configmaps "crud" not found');
  });

  it('fails a stale update with Conflict and a duplicate create with AlreadyExists', async () => {
    const cms = client.resource<ConfigMap>(Resources.configmaps);
    const v1 = await cms.create(cm('conflict'));
    await cms.update({ ...v1, data: { x: 'y' } });
    const err = await cms.update({ ...v1, data: { x: 'z' } }).catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    expect((err as ApiError).message).toBe(
      'Operation cannot be fulfilled on configmaps "conflict": the object has been modified; please apply your changes to the latest version and try again',
    );
    const dup = await cms.create(cm('conflict')).catch((e: unknown) => e);
    expect(isAlreadyExists(dup)).toBe(true);
    expect(isConflict(dup)).toBe(false);

    // retryOnConflict re-reads and wins.
    let runs = 0;
    await retryOnConflict(async () => {
      runs++;
      const cur = runs === 1 ? v1 : await cms.get('conflict', ns);
      return cms.update({ ...cur, data: { x: 'retried' } });
    });
    expect(runs).toBe(2);
    expect((await cms.get('conflict', ns)).data).toEqual({ x: 'retried' });
  });

  it('applies merge, strategic, json and server-side apply patches', async () => {
    const cms = client.resource<ConfigMap>(Resources.configmaps);
    await cms.create(cm('patch', { a: '1' }));
    let got = await mergePatch(cms, 'patch', { data: { b: '2' } }, { namespace: ns });
    expect(got.data).toEqual({ a: '1', b: '2' });
    await strategicMergePatch(
      cms,
      'patch',
      { metadata: { finalizers: ['example.com/one'] } },
      { namespace: ns },
    );
    got = await strategicMergePatch(
      cms,
      'patch',
      { metadata: { finalizers: ['example.com/two'] } },
      { namespace: ns },
    );
    // Without $setElementOrder the patch's items come first; the fake client copies this.
    expect(got.metadata.finalizers).toEqual(['example.com/two', 'example.com/one']);
    got = await jsonPatch(
      cms,
      'patch',
      [
        { op: 'test', path: '/data/a', value: '1' },
        { op: 'remove', path: '/metadata/finalizers' },
      ],
      { namespace: ns },
    );
    expect(got.metadata.finalizers).toBeUndefined();
    const failed = await jsonPatch(cms, 'patch', [{ op: 'test', path: '/data/a', value: 'nope' }], {
      namespace: ns,
    }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ApiError);
    expect(isInvalid(failed)).toBe(true);

    got = await applyPatch(cms, cm('patch', { owned: 'by-one' }), { fieldManager: 'one' });
    expect(got.data).toEqual({ a: '1', b: '2', owned: 'by-one' });
    const clash = await applyPatch(cms, cm('patch', { owned: 'by-two' }), { fieldManager: 'two' }).catch(
      (e: unknown) => e,
    );
    expect(isConflict(clash)).toBe(true);
    expect((clash as ApiError).message).toContain('conflict with "one"');
    got = await applyPatch(cms, cm('patch', { owned: 'by-two' }), { fieldManager: 'two', force: true });
    expect(got.data?.owned).toBe('by-two');
    const dry = await mergePatch(cms, 'patch', { data: { dry: 'run' } }, { namespace: ns, dryRun: true });
    expect(dry.data?.dry).toBe('run');
    expect((await cms.get('patch', ns)).data?.dry).toBeUndefined();
  });

  it('patches the status subresource; strategic lists merge by key, patch items first', async () => {
    const pods = client.resource<
      KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
    >(Resources.pods);
    await pods.create({
      metadata: { name: 'status', namespace: ns },
      spec: { containers: [{ name: 'c', image: 'example.invalid/none' }] },
    } as KubeObject);
    const cond = (type: string) => ({ type, status: 'True' });
    await strategicMergePatch(
      pods,
      'status',
      { status: { conditions: [cond('example.com/A')] } },
      { namespace: ns, subresource: 'status' },
    );
    let got = await strategicMergePatch(
      pods,
      'status',
      { status: { conditions: [cond('example.com/B')] } },
      { namespace: ns, subresource: 'status' },
    );
    const types = (got.status?.conditions ?? [])
      .map((c) => c.type)
      .filter((t) => t.startsWith('example.com/'));
    expect(types).toEqual(['example.com/B', 'example.com/A']);
    got = await mergePatch(
      pods,
      'status',
      { status: { message: 'hi' } },
      { namespace: ns, subresource: 'status' },
    );
    expect((got.status as { message?: string }).message).toBe('hi');
    await pods.delete('status', { namespace: ns, gracePeriodSeconds: 0 });
  });

  it('pages through a list with limit and continue, and reads metadata only', async () => {
    const cms = client.resource<ConfigMap>(Resources.configmaps);
    for (let i = 0; i < 5; i++) await cms.create(cm(`page-${i}`, { i: String(i) }, { set: 'paging' }));
    const names: string[] = [];
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await cms.list({ namespace: ns, labelSelector: 'set=paging', limit: 2, continue: token });
      pages++;
      names.push(...page.items.map((i) => i.metadata.name ?? ''));
      token = page.metadata.continue || undefined;
    } while (token);
    expect(pages).toBe(3);
    expect(names).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);

    const meta = await cms.list({ namespace: ns, labelSelector: 'set=paging', metadataOnly: true });
    expect(meta.kind).toBe('PartialObjectMetadataList');
    expect(meta.items[0].kind).toBe('PartialObjectMetadata');
    expect(meta.items[0].metadata.labels).toEqual({ set: 'paging' });
    expect((meta.items[0] as ConfigMap).data).toBeUndefined();
  });

  it('watches changes from a resourceVersion until aborted', async () => {
    const cms = client.resource<ConfigMap>(Resources.configmaps);
    const start = await cms.list({ namespace: ns, labelSelector: 'set=watch' });
    const ac = new AbortController();
    const events: WatchEvent<ConfigMap>[] = [];
    const done = (async () => {
      for await (const ev of cms.watch(
        {
          namespace: ns,
          labelSelector: 'set=watch',
          resourceVersion: start.metadata.resourceVersion,
          allowWatchBookmarks: true,
        },
        ac.signal,
      )) {
        if (ev.type === 'BOOKMARK') continue;
        events.push(ev);
        if (events.length === 3) ac.abort();
      }
    })();
    const created = await cms.create(cm('watched', { v: '1' }, { set: 'watch' }));
    await mergePatch(cms, 'watched', { data: { v: '2' } }, { namespace: ns });
    await cms.delete('watched', { namespace: ns });
    await done;
    expect(events.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.data?.v}`)).toEqual([
      'ADDED watched 1',
      'MODIFIED watched 2',
      'DELETED watched 2',
    ]);
    expect(events[0].object.metadata.uid).toBe(created.metadata.uid);
  });

  it('says who was forbidden to do what', async () => {
    await client.resource(serviceAccounts).create({ metadata: { name: 'nobody', namespace: ns } });
    const tr = await client.resource<KubeObject & { status?: { token?: string } }>(serviceAccounts).create(
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        metadata: { name: 'nobody', namespace: ns },
        spec: { expirationSeconds: 600 },
      } as KubeObject,
      { subresource: 'token' },
    );
    const token = tr.status?.token;
    expect(token).toBeTruthy();
    const admin = loadKubeConfig({ kubeconfig: testKubeconfigPath() });
    const cluster = admin.getCurrentCluster();
    if (!cluster) throw new Error('test kubeconfig without cluster');
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(cluster, { name: 'nobody', token });
    const nobody = createKubeClient(kc, {});
    cleanup.push(nobody);
    const err = await nobody
      .resource(Resources.configmaps)
      .list({ namespace: ns })
      .catch((e: unknown) => e);
    expect(isForbidden(err)).toBe(true);
    expect((err as ApiError).message).toBe(
      `configmaps is forbidden: User "system:serviceaccount:${ns}:nobody" cannot list resource "configmaps" in API group "" in the namespace "${ns}"`,
    );
    const err2 = await nobody
      .resource(Resources.serviceCIDRs)
      .get('kubernetes')
      .catch((e: unknown) => e);
    expect((err2 as ApiError).message).toBe(
      `servicecidrs.networking.k8s.io "kubernetes" is forbidden: User "system:serviceaccount:${ns}:nobody" cannot get resource "servicecidrs" in API group "networking.k8s.io" at the cluster scope`,
    );
  });

  it('counts requests in the registry it was given', async () => {
    const text = await registry.metrics();
    const host = new URL(client.server).host;
    const count = (code: string, method: string) => {
      const m = new RegExp(
        `^rest_client_requests_total\\{code="${code}",method="${method}",host="${host.replace(/[.[\]]/g, '\\$&')}"\\} (\\d+)$`,
        'm',
      ).exec(text);
      return m ? Number(m[1]) : 0;
    };
    expect(count('200', 'GET')).toBeGreaterThan(5);
    expect(count('201', 'POST')).toBeGreaterThan(5);
    expect(count('404', 'GET')).toBeGreaterThanOrEqual(1);
    expect(count('409', 'PUT')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^rest_client_request_duration_seconds_count\{verb="PATCH",host="[^"]+"\} \d+$/m);
    expect(text).toMatch(/^rest_client_rate_limiter_duration_seconds_count\{verb="GET",host="[^"]+"\} \d+$/m);
  });
});
