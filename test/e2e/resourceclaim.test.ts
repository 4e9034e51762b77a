/**
 * resourceclaim-controller end to end: the real kube-apiserver and kube-scheduler of the test
 * control plane, ts-kcm running only this controller. The scheduler allocates claims (from a
 * ResourceSlice on a Node that looks Ready) and binds pods; the tests play the kubelet by
 * writing the pod phase to the status subresource. Scenarios follow upstream's
 * test/e2e/dra and test/integration/dra, on our own objects.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event, KubeObject, Pod, ResourceClaim, ResourceClaimTemplate } from '../../lib/api/index.js';
import { createKubeClient, isNotFound, loadKubeConfig, Resources } from '../../lib/client/index.js';
import type { KubeClient, ResourceClient } from '../../lib/client/index.js';
import { resourceClaimController } from '../../controllers/resourceclaim/index.js';
import { claimGenerateName, POD_CLAIM_NAME_ANNOTATION } from '../../controllers/resourceclaim/names.js';
import {
  createTestNamespace,
  deleteNamespace,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
} from '../support/cluster.js';

type TsKcm = ReturnType<typeof startTsKcm>;

const PAUSE = 'registry.k8s.io/pause:3.10';
const DEVICES_PER_NODE = 32;
const CLAIM_SPEC = (deviceClass: string) => ({
  devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: deviceClass } }] },
});

let client: KubeClient;
let pods: ResourceClient<Pod>;
let claims: ResourceClient<ResourceClaim>;
let templates: ResourceClient<ResourceClaimTemplate>;
let kcm: TsKcm;
let metricsURL: string;
let restrictedPath: string;
let ns: string;
let nodeName: string;
let deviceClass: string;
let driver: string;
const cleanup: (() => Promise<unknown>)[] = [];
/** Namespaces whose pods and claims are removed before ts-kcm stops. */
const drained: string[] = [];

// ---- fixtures ----

async function createNode(name: string): Promise<void> {
  const nodes = client.resource(Resources.nodes);
  await nodes.create({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'ts-kcm.test/rc-node': name } },
  });
  cleanup.push(() => nodes.delete(name).catch(() => undefined));
  const now = new Date().toISOString();
  const resources = { pods: '250', cpu: '8', memory: '16Gi' };
  await nodes.patch(
    name,
    {
      status: {
        capacity: resources,
        allocatable: resources,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'played by the test',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
    { type: 'merge', subresource: 'status' },
  );
}

async function createDriverObjects(): Promise<void> {
  const classes = client.resource(Resources.deviceClasses);
  await classes.create({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'DeviceClass',
    metadata: { name: deviceClass },
    spec: { selectors: [{ cel: { expression: `device.driver == "${driver}"` } }] },
  } as KubeObject);
  cleanup.push(() => classes.delete(deviceClass).catch(() => undefined));
  const slices = client.resource(Resources.resourceSlices);
  const slice = uniqueName('rc-slice');
  await slices.create({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name: slice },
    spec: {
      driver,
      nodeName,
      pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
      devices: Array.from({ length: DEVICES_PER_NODE }, (_, i) => ({ name: `dev-${i}` })),
    },
  } as KubeObject);
  cleanup.push(() => slices.delete(slice).catch(() => undefined));
}

async function createTemplate(
  name: string,
  spec = CLAIM_SPEC(deviceClass),
  namespace = ns,
): Promise<ResourceClaimTemplate> {
  return templates.create(
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaimTemplate',
      metadata: { name },
      spec: { metadata: { labels: { made: 'by-template' } }, spec },
    },
    { namespace },
  );
}

async function createClaim(name: string): Promise<ResourceClaim> {
  return claims.create(
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaim',
      metadata: { name },
      spec: CLAIM_SPEC(deviceClass),
    },
    { namespace: ns },
  );
}

interface PodOpts {
  template?: string;
  claimName?: string;
  podClaim?: string;
  /** Bypass the scheduler (the controller then reserves claims itself). */
  nodeName?: string;
}

async function createPod(name: string, opts: PodOpts): Promise<Pod> {
  const podClaim = opts.podClaim ?? 'gpu';
  return pods.create(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        ...(opts.nodeName
          ? { nodeName: opts.nodeName }
          : { nodeSelector: { 'ts-kcm.test/rc-node': nodeName } }),
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: PAUSE, resources: { claims: [{ name: podClaim }] } }],
        resourceClaims: [
          opts.template
            ? { name: podClaim, resourceClaimTemplateName: opts.template }
            : { name: podClaim, resourceClaimName: opts.claimName },
        ],
      },
    },
    { namespace: ns },
  );
}

/** Play the kubelet: report a phase. */
async function setPhase(name: string, phase: 'Running' | 'Succeeded' | 'Failed'): Promise<void> {
  await pods.patch(name, { status: { phase } }, { type: 'merge', subresource: 'status', namespace: ns });
}

async function getClaim(name: string): Promise<ResourceClaim | undefined> {
  try {
    return await claims.get(name, ns);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function generatedClaimName(pod: string, podClaim = 'gpu'): Promise<string> {
  return waitFor(
    async () => {
      const p = await pods.get(pod, ns);
      return (
        p.status?.resourceClaimStatuses?.find((s) => s.name === podClaim)?.resourceClaimName ?? undefined
      );
    },
    { timeoutMs: 30_000, description: `pod ${pod} to record its generated claim` },
  );
}

async function waitScheduledAndReserved(pod: string, claimName: string): Promise<ResourceClaim> {
  const p = await waitFor(
    async () => {
      const cur = await pods.get(pod, ns);
      return cur.spec?.nodeName ? cur : undefined;
    },
    { timeoutMs: 60_000, description: `pod ${pod} to be bound` },
  );
  return waitFor(
    async () => {
      const c = await getClaim(claimName);
      return c?.status?.allocation && c.status.reservedFor?.some((r) => r.uid === p.metadata.uid)
        ? c
        : undefined;
    },
    { timeoutMs: 60_000, description: `claim ${claimName} to be allocated and reserved for ${pod}` },
  );
}

async function metricValue(line: string): Promise<number> {
  const text = await (await fetch(metricsURL)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

async function podEvents(pod: string): Promise<Event[]> {
  const list = await client.resource<Event>(Resources.events).list({ namespace: ns });
  return list.items.filter((e) => e.regarding?.name === pod);
}

/**
 * A kubeconfig for a ServiceAccount bound to exactly the controller's declared RBAC rules,
 * so every scenario below also proves that nothing more is needed.
 */
async function restrictedKubeconfig(): Promise<string> {
  const role = uniqueName('rc-e2e-role');
  const roles = client.resource({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    resource: 'clusterroles',
    kind: 'ClusterRole',
    namespaced: false,
  });
  const bindings = client.resource({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    resource: 'clusterrolebindings',
    kind: 'ClusterRoleBinding',
    namespaced: false,
  });
  const serviceAccounts = client.resource({
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
  });
  await roles.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: role },
    rules: resourceClaimController.rbac,
  } as KubeObject);
  cleanup.push(() => roles.delete(role).catch(() => undefined));
  await serviceAccounts.create(
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'resourceclaim-controller' } },
    { namespace: ns },
  );
  await bindings.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: role },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: 'resourceclaim-controller', namespace: ns }],
  } as KubeObject);
  cleanup.push(() => bindings.delete(role).catch(() => undefined));
  const tokenRequest = (await serviceAccounts.create(
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: 'resourceclaim-controller' },
      spec: { expirationSeconds: 3600 },
    } as KubeObject,
    { namespace: ns, subresource: 'token' },
  )) as KubeObject & { status: { token: string } };
  // Same cluster entry (server, CA) as the admin kubeconfig, with the token as the user.
  const admin = readFileSync(testKubeconfigPath(), 'utf8');
  const server = /server:\s*(\S+)/.exec(admin)?.[1];
  const ca = /certificate-authority-data:\s*(\S+)/.exec(admin)?.[1];
  const caFile = /certificate-authority:\s*(\S+)/.exec(admin)?.[1];
  if (!server || (!ca && !caFile)) throw new Error('cannot read the server and CA from the admin kubeconfig');
  const path = join(mkdtempSync(join(tmpdir(), 'rc-e2e-')), 'kubeconfig');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: test',
      '  cluster:',
      `    server: ${server}`,
      ca ? `    certificate-authority-data: ${ca}` : `    certificate-authority: ${caFile}`,
      'users:',
      '- name: resourceclaim-controller',
      '  user:',
      `    token: ${tokenRequest.status.token}`,
      'contexts:',
      '- name: test',
      '  context: {cluster: test, user: resourceclaim-controller}',
      'current-context: test',
      '',
    ].join('\n'),
  );
  return path;
}

// ---- setup ----

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 500, burst: 1000 });
  pods = client.resource<Pod>(Resources.pods);
  claims = client.resource<ResourceClaim>(Resources.resourceClaims);
  templates = client.resource<ResourceClaimTemplate>(Resources.resourceClaimTemplates);
  ns = await createTestNamespace('rc-e2e');
  drained.push(ns);
  nodeName = uniqueName('rc-node');
  driver = `${uniqueName('rc')}.example.com`;
  deviceClass = uniqueName('rc-class');
  await createNode(nodeName);
  await createDriverObjects();
  const kubeconfig = await restrictedKubeconfig();
  restrictedPath = kubeconfig;
  kcm = startTsKcm(
    [
      'run',
      // KCM's alias for resourceclaim-controller.
      '--controllers=resource-claim-controller',
      '--leader-elect=false',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=0',
      // The test drives many pods at once; the default 20 QPS would only make it slower.
      '--kube-api-qps=200',
      '--kube-api-burst=400',
    ],
    { kubeconfig },
  );
  const m = await kcm.waitForOutput(/^(\{.*"message":"serving metrics".*\})$/m, 60_000);
  metricsURL = `http://${(JSON.parse(m[1]) as { address: string }).address}/metrics`;
}, 120_000);

/**
 * Leave nothing for controllers started by later test files on the shared control plane:
 * pods go at once, then the claims, whose finalizers our controller (still running) removes.
 */
async function drainNamespace(namespace: string): Promise<void> {
  for (const p of (await pods.list({ namespace })).items) {
    await pods.delete(p.metadata.name!, { namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
  for (const c of (await claims.list({ namespace })).items) {
    await claims.delete(c.metadata.name!, { namespace }).catch(() => undefined);
  }
  await waitFor(async () => (await claims.list({ namespace })).items.length === 0, {
    timeoutMs: 30_000,
    description: `claims in ${namespace} to be gone`,
  }).catch((err: unknown) => process.stderr.write(`resourceclaim e2e cleanup: ${String(err)}\n`));
}

afterAll(async () => {
  if (pods) for (const n of drained) await drainNamespace(n);
  const code = await kcm?.stop();
  if (code !== undefined && code !== 0)
    process.stderr.write(`ts-kcm exited with ${code}:\n${kcm.output().slice(-4000)}\n`);
  for (const fn of cleanup.reverse()) await fn();
  if (ns) await deleteNamespace(ns);
}, 60_000);

// ---- scenarios ----

describe('resourceclaim-controller (real apiserver + scheduler)', () => {
  it('creates a claim from the template, records it in the pod status, and the scheduler allocates it', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    const created = 'resourceclaim_controller_creates_total{status="success",admin_access="false"}';
    const before = await metricValue(created);
    const pod = await createPod('with-template', { template: tpl });
    const name = await generatedClaimName('with-template');
    expect(name).toMatch(/^with-template-gpu-[a-z0-9]{5}$/);
    const claim = (await getClaim(name))!;
    expect(claim.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION]).toBe('gpu');
    expect(claim.metadata.labels).toEqual({ made: 'by-template' });
    expect(claim.metadata.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Pod', name: 'with-template', uid: pod.metadata.uid, controller: true },
    ]);
    await waitScheduledAndReserved('with-template', name);
    expect(await metricValue(created)).toBe(before + 1);
    const gauge =
      'resourceclaim_controller_resource_claims{allocated="true",admin_access="false",source="resource_claim_template"}';
    expect(await metricValue(gauge)).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('truncates the names of 63-character pods and claims proportionally', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    const podName = `p${'a'.repeat(62)}`;
    const podClaim = `c${'b'.repeat(62)}`;
    await createPod(podName, { template: tpl, podClaim });
    const name = await generatedClaimName(podName, podClaim);
    const claim = (await getClaim(name))!;
    expect(claim.metadata.generateName).toBe(claimGenerateName(podName, podClaim));
    expect(claim.metadata.generateName).toBe(`p${'a'.repeat(27)}-c${'b'.repeat(27)}`);
    expect(name).toHaveLength(62);
    await waitScheduledAndReserved(podName, name);
  }, 120_000);

  it('runs a pod whose status entry says the claim is not needed (null name)', async () => {
    // The template does not exist, so nothing is generated before the status entry is set.
    await createPod('not-needed', { template: uniqueName('absent') });
    await pods.patch(
      'not-needed',
      { status: { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: null }] } },
      { type: 'strategic', subresource: 'status', namespace: ns },
    );
    const bound = await waitFor(async () => (await pods.get('not-needed', ns)).spec?.nodeName, {
      timeoutMs: 60_000,
      description: 'pod without a generated claim to be scheduled',
    });
    expect(bound).toBe(nodeName);
    const owned = (await claims.list({ namespace: ns })).items.filter((c) =>
      c.metadata.ownerReferences?.some((r) => r.name === 'not-needed'),
    );
    expect(owned).toEqual([]);
  }, 120_000);

  it('must deallocate after use: deleting the pod clears reservation, allocation and finalizer', async () => {
    await createClaim('dealloc');
    await createPod('dealloc-user', { claimName: 'dealloc' });
    const reserved = await waitScheduledAndReserved('dealloc-user', 'dealloc');
    expect(reserved.metadata.finalizers).toContain('resource.kubernetes.io/delete-protection');
    await pods.delete('dealloc-user', { namespace: ns, gracePeriodSeconds: 0 });
    const released = await waitFor(
      async () => {
        const c = await getClaim('dealloc');
        return c && !c.status?.allocation && !(c.metadata.finalizers ?? []).length ? c : undefined;
      },
      { timeoutMs: 60_000, description: 'claim to be deallocated' },
    );
    expect(released.status?.reservedFor ?? []).toEqual([]);
    expect(released.status?.allocation ?? null).toBeNull();
  }, 120_000);

  it('removes the reservation from the claim when the pod is done', async () => {
    await createClaim('done-user');
    await createPod('done-pod', { claimName: 'done-user' });
    await waitScheduledAndReserved('done-pod', 'done-user');
    await setPhase('done-pod', 'Succeeded');
    const c = await waitFor(
      async () => {
        const cur = await getClaim('done-user');
        return cur && !(cur.status?.reservedFor ?? []).length ? cur : undefined;
      },
      { timeoutMs: 60_000, description: 'reservation to be removed' },
    );
    expect(c.status?.allocation ?? null).toBeNull(); // last consumer gone: deallocated as well
  }, 120_000);

  it('deletes generated claims when the pod is done', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    await createPod('gen-done', { template: tpl });
    const name = await generatedClaimName('gen-done');
    await waitScheduledAndReserved('gen-done', name);
    await setPhase('gen-done', 'Failed');
    await waitFor(async () => (await getClaim(name)) === undefined, {
      timeoutMs: 60_000,
      description: `claim ${name} to be deleted`,
    });
  }, 120_000);

  it('does not delete generated claims while the pod runs (or restarts)', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    await createPod('gen-running', { template: tpl });
    const name = await generatedClaimName('gen-running');
    await waitScheduledAndReserved('gen-running', name);
    await setPhase('gen-running', 'Running');
    // A pod that is Running again after a container restart is the same pod instance.
    await setPhase('gen-running', 'Running');
    // A negative check: give the controller the time it needs to handle another pod from
    // scratch (create, publish) — it saw the phase change before that.
    const marker = uniqueName('tpl');
    await createTemplate(marker);
    await createPod('gen-marker', { template: marker });
    await generatedClaimName('gen-marker');
    const claim = await getClaim(name);
    expect(claim?.status?.reservedFor?.map((r) => r.name)).toEqual(['gen-running']);
    expect(claim?.status?.allocation).toBeTruthy();
  }, 120_000);

  it('a missing template gives a Warning event and is retried; creating the template lets the pod proceed', async () => {
    const tpl = uniqueName('late-tpl');
    await createPod('late', { template: tpl });
    const ev = await waitFor(
      async () => (await podEvents('late')).find((e) => e.reason === 'FailedResourceClaimCreation'),
      {
        timeoutMs: 30_000,
        description: 'FailedResourceClaimCreation event',
      },
    );
    expect(ev.type).toBe('Warning');
    expect(ev.note).toBe(
      `PodResourceClaim gpu: resource claim template "${tpl}": resourceclaimtemplate.resource.k8s.io "${tpl}" not found`,
    );
    await createTemplate(tpl);
    const name = await generatedClaimName('late');
    await waitScheduledAndReserved('late', name);
    expect(kcm.output()).toContain('not found');
  }, 120_000);

  it('a claim shared by many pods is released pod by pod, then deallocated', async () => {
    await createClaim('shared-few');
    const names = ['few-0', 'few-1', 'few-2'];
    for (const n of names) await createPod(n, { claimName: 'shared-few' });
    for (const n of names) await waitScheduledAndReserved(n, 'shared-few');
    for (let i = 0; i < names.length; i++) {
      await setPhase(names[i], 'Succeeded');
      const c = await waitFor(
        async () => {
          const cur = await getClaim('shared-few');
          return cur && (cur.status?.reservedFor ?? []).length === names.length - i - 1 ? cur : undefined;
        },
        { timeoutMs: 60_000, description: `reservation of ${names[i]} to go` },
      );
      if (i < names.length - 1) expect(c.status?.allocation).toBeTruthy();
      else expect(c.status?.allocation ?? null).toBeNull();
    }
  }, 180_000);
});

describe('pod status written by server-side apply', () => {
  it('two template claims, one generated claim deleted: it is re-created and the pod status settles (no apply loop)', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    const podName = 'two-claims';
    // No scheduler takes this pod, so every pod write in this test is the controller's.
    await pods.create(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName },
        spec: {
          schedulerName: 'ts-kcm-test-nobody',
          terminationGracePeriodSeconds: 0,
          containers: [
            { name: 'c', image: PAUSE, resources: { claims: [{ name: 'one' }, { name: 'two' }] } },
          ],
          resourceClaims: [
            { name: 'one', resourceClaimTemplateName: tpl },
            { name: 'two', resourceClaimTemplateName: tpl },
          ],
        },
      },
      { namespace: ns },
    );
    const one = await generatedClaimName(podName, 'one');
    const first = await generatedClaimName(podName, 'two');
    await claims.delete(first, { namespace: ns });
    const statuses = async () =>
      Object.fromEntries(
        ((await pods.get(podName, ns)).status?.resourceClaimStatuses ?? []).map((s) => [
          s.name,
          s.resourceClaimName,
        ]),
      );
    const settled = await waitFor(
      async () => {
        const cur = await statuses();
        return cur.one === one && cur.two && cur.two !== first ? cur : undefined;
      },
      { timeoutMs: 30_000, description: 'a new claim for "two" next to the kept one for "one"' },
    );
    // Applying only the new entry would drop "one"; the next sync would bring it back and
    // drop "two", and so on. Watch the pod for a while: its resourceVersion must not move.
    const versions = new Set<string>();
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      const cur = await pods.get(podName, ns);
      versions.add(cur.metadata.resourceVersion!);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(versions.size).toBe(1);
    expect(await statuses()).toEqual(settled);
    expect((await getClaim(settled.two!))?.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION]).toBe('two');
  }, 60_000);
});

describe('50 pods on one shared claim', () => {
  it('add themselves concurrently and finish at once: each reservation removed exactly once, deallocated only after the last', async () => {
    const claimName = 'shared-50';
    await createClaim(claimName);
    // The scheduler allocates for the first pod...
    await createPod('s50-0', { claimName });
    await waitScheduledAndReserved('s50-0', claimName);
    // ...the other 49 skip the scheduler, so this controller reserves the claim for each of
    // them: 49 concurrent strategic-merge patches of status.reservedFor.
    const addStart = Date.now();
    const rest = await Promise.all(
      Array.from({ length: 49 }, (_, i) => createPod(`s50-${i + 1}`, { claimName, nodeName })),
    );
    const all = [await pods.get('s50-0', ns), ...rest];
    const uids = new Set(all.map((p) => p.metadata.uid!));
    await waitFor(
      async () => {
        const c = await getClaim(claimName);
        return c && new Set((c.status?.reservedFor ?? []).map((r) => r.uid)).size === 50 ? c : undefined;
      },
      { timeoutMs: 120_000, description: 'all 50 reservations' },
    );
    const addMs = Date.now() - addStart;

    // Record every state of the claim while all 50 pods finish at once.
    const seen: ResourceClaim[] = [];
    const watchAbort = new AbortController();
    const current = (await getClaim(claimName))!;
    const watching = (async () => {
      try {
        for await (const ev of claims.watch(
          {
            namespace: ns,
            fieldSelector: `metadata.name=${claimName}`,
            resourceVersion: current.metadata.resourceVersion,
          },
          watchAbort.signal,
        )) {
          if (ev.type === 'MODIFIED' || ev.type === 'ADDED') seen.push(ev.object);
        }
      } catch {
        // aborted
      }
    })();
    const releaseStart = Date.now();
    await Promise.all(all.map((p) => setPhase(p.metadata.name!, 'Succeeded')));
    const final = await waitFor(
      async () => {
        const c = await getClaim(claimName);
        return c &&
          !(c.status?.reservedFor ?? []).length &&
          !c.status?.allocation &&
          !(c.metadata.finalizers ?? []).length
          ? c
          : undefined;
      },
      { timeoutMs: 120_000, description: 'all reservations removed and the claim deallocated' },
    );
    const releaseMs = Date.now() - releaseStart;
    await waitFor(() => seen.some((c) => c.metadata.resourceVersion === final.metadata.resourceVersion), {
      timeoutMs: 10_000,
      description: 'the watch to deliver the final state',
    });
    watchAbort.abort();
    await watching;

    // Each reservation disappears exactly once and never comes back; while any remains the
    // claim stays allocated; the allocation goes only together with the last reservation.
    const gone = new Set<string>();
    let previous = new Set(uids);
    for (const c of seen) {
      const now = new Set((c.status?.reservedFor ?? []).map((r) => r.uid));
      for (const uid of now) expect(gone.has(uid)).toBe(false);
      for (const uid of previous) if (!now.has(uid)) gone.add(uid);
      if (now.size > 0) expect(c.status?.allocation).toBeTruthy();
      previous = now;
    }
    expect(gone).toEqual(uids);
    const retried = (re: RegExp) =>
      kcm
        .output()
        .split('\n')
        .filter((l) => re.test(l) && l.includes(claimName)).length;
    process.stderr.write(
      `resourceclaim e2e: 49 concurrent reservations by the controller in ${addMs} ms ` +
        `(${retried(/reserve claim/)} failed attempts retried); 50 pods released in ${releaseMs} ms over ` +
        `${seen.length} claim updates (${retried(/Operation cannot be fulfilled/)} conflicts retried)\n`,
    );
  }, 300_000);
});

describe('bad input is reported and retried without disturbing other keys', () => {
  it('a reservedFor entry of an unsupported resource: pod entries still go, the claim stays allocated, the error is logged', async () => {
    await createClaim('odd-consumer');
    await createPod('odd-pod', { claimName: 'odd-consumer' });
    const claim = await waitScheduledAndReserved('odd-pod', 'odd-consumer');
    await claims.patch(
      'odd-consumer',
      {
        metadata: { uid: claim.metadata.uid },
        status: {
          reservedFor: [{ apiGroup: 'example.com', resource: 'widgets', name: 'w', uid: 'widget-uid-1' }],
        },
      },
      { type: 'strategic', subresource: 'status', namespace: ns },
    );
    await setPhase('odd-pod', 'Succeeded');
    const c = await waitFor(
      async () => {
        const cur = await getClaim('odd-consumer');
        return cur && (cur.status?.reservedFor ?? []).length === 1 ? cur : undefined;
      },
      { timeoutMs: 60_000, description: 'the pod reservation to go' },
    );
    expect(c.status?.reservedFor).toEqual([
      { apiGroup: 'example.com', resource: 'widgets', name: 'w', uid: 'widget-uid-1' },
    ]);
    expect(c.status?.allocation).toBeTruthy();
    await kcm.waitForOutput(/unsupported ReservedFor entry/, 30_000);
    // The foreign consumer goes away (by hand): the claim can now be cleaned up normally.
    await claims.update(
      { ...c, status: { ...c.status, reservedFor: [] } },
      { namespace: ns, subresource: 'status' },
    );

    // Other keys are unaffected: a fresh pod still gets its claim.
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    await createPod('after-odd', { template: tpl });
    await generatedClaimName('after-odd');
  }, 120_000);

  it('a template whose spec the apiserver rejects: failure counted, Warning event, retried, no crash', async () => {
    // Admin access is only allowed in namespaces labelled for it; the template was accepted
    // while the label was there, the claim made from it after the label went is not.
    const adminNs = await createTestNamespace('rc-admin');
    cleanup.push(() => deleteNamespace(adminNs));
    drained.push(adminNs);
    const namespaces = client.resource(Resources.namespaces);
    await namespaces.patch(
      adminNs,
      { metadata: { labels: { 'resource.kubernetes.io/admin-access': 'true' } } },
      { type: 'merge' },
    );
    const tpl = uniqueName('admin-tpl');
    await createTemplate(
      tpl,
      {
        devices: {
          requests: [{ name: 'gpu', exactly: { deviceClassName: deviceClass, adminAccess: true } }],
        },
      } as never,
      adminNs,
    );
    await namespaces.patch(
      adminNs,
      { metadata: { labels: { 'resource.kubernetes.io/admin-access': null } } },
      { type: 'merge' },
    );

    const failed = 'resourceclaim_controller_creates_total{status="failure",admin_access="true"}';
    const before = await metricValue(failed);
    await pods.create(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'admin-pod' },
        spec: {
          nodeSelector: { 'ts-kcm.test/rc-node': nodeName },
          containers: [{ name: 'c', image: PAUSE }],
          resourceClaims: [{ name: 'gpu', resourceClaimTemplateName: tpl }],
        },
      },
      { namespace: adminNs },
    );
    const ev = await waitFor(
      async () => {
        const list = await client.resource<Event>(Resources.events).list({ namespace: adminNs });
        return list.items.find(
          (e) => e.regarding?.name === 'admin-pod' && e.reason === 'FailedResourceClaimCreation',
        );
      },
      { timeoutMs: 30_000, description: 'FailedResourceClaimCreation event' },
    );
    expect(ev.type).toBe('Warning');
    expect(ev.note).toMatch(/^PodResourceClaim gpu: create ResourceClaim admin-pod-gpu-: /);
    await waitFor(async () => (await metricValue(failed)) >= before + 2, {
      timeoutMs: 30_000,
      description: 'the create to be retried',
    });
    expect(kcm.proc.exitCode).toBeNull();
  }, 120_000);

  it('a pod whose recorded claim belongs to another pod cannot resolve: Warning event and retries until it can', async () => {
    const tpl = uniqueName('tpl');
    await createTemplate(tpl);
    await createPod('owner-a', { template: tpl });
    const foreign = await generatedClaimName('owner-a');
    // owner-b points at owner-a's claim and its own template is missing: no claim can be made.
    const missing = uniqueName('absent');
    await createPod('owner-b', { template: missing });
    await pods.patch(
      'owner-b',
      { status: { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: foreign }] } },
      { type: 'strategic', subresource: 'status', namespace: ns },
    );
    await waitFor(
      async () => (await podEvents('owner-b')).find((e) => e.reason === 'FailedResourceClaimCreation'),
      {
        timeoutMs: 30_000,
        description: 'FailedResourceClaimCreation event for owner-b',
      },
    );
    // The foreign claim is never reserved for owner-b, and once the template exists owner-b gets its own.
    await createTemplate(missing);
    await waitFor(
      async () => {
        const name = (await pods.get('owner-b', ns)).status?.resourceClaimStatuses?.[0]?.resourceClaimName;
        return name && name !== foreign ? name : undefined;
      },
      { timeoutMs: 60_000, description: 'owner-b to get a claim of its own' },
    );
    expect((await getClaim(foreign))?.status?.reservedFor?.map((r) => r.name)).not.toContain('owner-b');
  }, 120_000);
});

describe('RBAC', () => {
  // Runs last: every scenario above ran with only the declared rules.
  it('needed nothing beyond the rules the controller declares', () => {
    // (RBAC refusals read `... is forbidden: User "system:serviceaccount:..." cannot ...`.)
    expect(kcm.output()).not.toMatch(/forbidden: (User|cannot)/);
    expect(kcm.proc.exitCode).toBeNull();
  });

  it('the kubeconfig ts-kcm ran with really is restricted', async () => {
    const restricted = createKubeClient(loadKubeConfig({ kubeconfig: restrictedPath }), {
      qps: 10,
      burst: 10,
    });
    await expect(restricted.resource(Resources.nodes).list()).rejects.toMatchObject({ code: 403 });
    await expect(restricted.resource(Resources.pods).list({ namespace: ns })).resolves.toBeDefined();
  });
});
