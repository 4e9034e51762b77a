/**
 * service-cidr-controller against a real kube-apiserver, with ts-kcm running only that
 * controller (the upstream scenarios of test/integration/servicecidr, on our own names).
 *
 * Scenarios that need a tiny default range, or that delete the default `kubernetes`
 * ServiceCIDR, run on a private control plane; the /24-under-/16 scenario shares the global
 * one and stays clear of its default range (10.0.0.0/24).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPAddress, KubeObject, Service, ServiceCIDR } from '../../lib/api/index.js';
import {
  createKubeClient,
  isNotFound,
  loadKubeConfig,
  Resources,
  type KubeClient,
  type ResourceClient,
} from '../../lib/client/index.js';
import type { ResourceRef } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { serviceCIDRController } from '../../controllers/servicecidr/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
  type TsKcmProcess,
} from '../support/cluster.js';

const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
const GRACE_MS = 10_000;
const TERMINATING_MESSAGE =
  'There are still IPAddresses referencing the ServiceCIDR, please remove them or create a new ServiceCIDR';

/** ts-kcm running only this controller; startTsKcm adds --kubeconfig. */
function startController(kubeconfig: string): TsKcmProcess {
  return startTsKcm(
    [
      'run',
      '--controllers=service-cidr-controller',
      '--leader-elect=false',
      '--metrics-bind-address=0',
      '--health-probe-bind-address=0',
    ],
    { kubeconfig },
  );
}

/** ts-kcm's output, kept for a post-mortem (jest does not tell afterAll whether tests failed). */
function keepLog(plane: string, kcm: TsKcmProcess | undefined): void {
  if (kcm) writeFileSync(join(tmpdir(), `ts-kcm-servicecidr-${plane}.log`), kcm.output());
}

// ---- small helpers over the real client ----

const rbacRefs = {
  serviceAccounts: {
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
  },
  clusterRoles: {
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    resource: 'clusterroles',
    kind: 'ClusterRole',
    namespaced: false,
  },
  clusterRoleBindings: {
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    resource: 'clusterrolebindings',
    kind: 'ClusterRoleBinding',
    namespaced: false,
  },
} satisfies Record<string, ResourceRef>;

/** RBAC objects carry rules, roleRef and subjects beside metadata. */
type RbacObject = KubeObject & Record<string, unknown>;

/**
 * A kubeconfig for a ServiceAccount bound to a ClusterRole holding exactly the definition's
 * rbac rules (what manifests/ is generated from), so the scenarios also prove those rules
 * are enough. Token from the TokenRequest API; server and CA as in the admin kubeconfig.
 */
async function kubeconfigWithControllerRBAC(
  admin: KubeClient,
  adminKubeconfig: string,
  dir: string,
): Promise<string> {
  const name = 'service-cidr-controller';
  const ns = 'kube-system';
  await admin
    .resource(rbacRefs.serviceAccounts)
    .create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  await admin.resource<RbacObject>(rbacRefs.clusterRoles).create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: `ts-kcm:${name}` },
    rules: serviceCIDRController.rbac,
  });
  await admin.resource<RbacObject>(rbacRefs.clusterRoleBindings).create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `ts-kcm:${name}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `ts-kcm:${name}` },
    subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
  });
  const res = await admin.requestRaw('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  expect(res.status).toBe(201);
  const token = (JSON.parse(res.body) as { status: { token: string } }).status.token;
  const text = readFileSync(adminKubeconfig, 'utf8');
  expect(text).toMatch(/^\s*token: \S+$/m);
  const path = join(dir, 'service-cidr-controller.kubeconfig');
  writeFileSync(path, text.replace(/^(\s*token: )\S+$/m, `$1${token}`), { mode: 0o600 });
  return path;
}

function clientFor(kubeconfig: string): KubeClient {
  return createKubeClient(loadKubeConfig({ kubeconfig }), { qps: 200, burst: 400 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readyCondition(sc: ServiceCIDR) {
  return sc.status?.conditions?.find((c) => c.type === 'Ready');
}

async function getOrUndefined<T extends ServiceCIDR | Service | IPAddress>(
  rc: ResourceClient<T>,
  name: string,
  ns?: string,
) {
  try {
    return await rc.get(name, ns);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function makeServiceCIDR(name: string, ...cidrs: string[]): ServiceCIDR {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name }, spec: { cidrs } };
}

function makeService(name: string, clusterIP?: string): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'ClusterIP', ports: [{ port: 80 }], ...(clusterIP ? { clusterIP } : {}) },
  };
}

class Cluster {
  readonly cidrs: ResourceClient<ServiceCIDR>;
  readonly services: ResourceClient<Service>;
  readonly ips: ResourceClient<IPAddress>;
  constructor(readonly client: KubeClient) {
    this.cidrs = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    this.services = client.resource<Service>(Resources.services);
    this.ips = client.resource<IPAddress>(Resources.ipAddresses);
  }

  /** Ready=True with our finalizer: the controller has seen it. */
  async waitReady(name: string): Promise<ServiceCIDR> {
    return waitFor(
      async () => {
        const sc = await getOrUndefined(this.cidrs, name);
        return sc && readyCondition(sc)?.status === 'True' && sc.metadata.finalizers?.includes(FINALIZER)
          ? sc
          : undefined;
      },
      { description: `ServiceCIDR ${name} Ready=True with finalizer`, timeoutMs: 60_000 },
    );
  }

  async waitTerminating(name: string): Promise<ServiceCIDR> {
    return waitFor(
      async () => {
        const sc = await getOrUndefined(this.cidrs, name);
        const c = sc && readyCondition(sc);
        return c?.status === 'False' && c.reason === 'Terminating' ? sc : undefined;
      },
      { description: `ServiceCIDR ${name} Ready=False/Terminating`, timeoutMs: 60_000 },
    );
  }

  /**
   * Polls `name` every 50 ms until it is gone. Returns the deletionTimestamp the server
   * recorded, the first moment the object was seen gone, and every moment it was seen still
   * existing without our finalizer inside the grace window (there must be none).
   */
  async waitGone(name: string, timeoutMs = 60_000) {
    let deletionTimestamp = NaN;
    const earlyReleases: number[] = [];
    const goneAt = await waitFor(
      async () => {
        const sc = await getOrUndefined(this.cidrs, name);
        const now = Date.now();
        if (!sc) return now;
        if (sc.metadata.deletionTimestamp) deletionTimestamp = Date.parse(sc.metadata.deletionTimestamp);
        if (!sc.metadata.finalizers?.includes(FINALIZER) && now < deletionTimestamp + GRACE_MS)
          earlyReleases.push(now);
        return undefined;
      },
      { description: `ServiceCIDR ${name} gone`, timeoutMs, intervalMs: 50 },
    );
    return { deletionTimestamp, goneAt, earlyReleases };
  }

  /** Deletes `name` and checks it disappears no earlier than deletionTimestamp + 10 s. */
  async deleteAndExpectGoneAfterGrace(name: string): Promise<void> {
    await this.cidrs.delete(name);
    const { deletionTimestamp, goneAt, earlyReleases } = await this.waitGone(name);
    expect(Number.isNaN(deletionTimestamp)).toBe(false);
    expect(earlyReleases).toEqual([]);
    expect(goneAt).toBeGreaterThanOrEqual(deletionTimestamp + GRACE_MS);
  }
}

// ---- scenarios on a private control plane with a /29 default range ----

describe('service-cidr-controller, private control plane with --service-cluster-ip-range=10.0.0.0/29', () => {
  let cp: ControlPlane;
  let kcm: TsKcmProcess;
  let k: Cluster;
  const ns = 'servicecidr-small';

  beforeAll(async () => {
    cp = await ControlPlane.start({
      dir: mkdtempSync(join(tmpdir(), 'ts-kcm-servicecidr-')),
      serviceClusterIPRange: '10.0.0.0/29',
    });
    k = new Cluster(clientFor(cp.kubeconfigPath));
    await k.client
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // On this plane ts-kcm runs with the controller's own RBAC, not as admin.
    kcm = startController(await kubeconfigWithControllerRBAC(k.client, cp.kubeconfigPath, cp.dir));
  }, 180_000);

  afterAll(async () => {
    try {
      const code = await kcm?.stop();
      keepLog('private', kcm);
      // Nothing it needed was refused, and it shut down cleanly.
      expect(kcm?.output()).not.toMatch(/forbidden/i);
      expect(code).toBe(0);
    } finally {
      await cp?.stop();
    }
  }, 60_000);

  it('protects the default ServiceCIDR: finalizer and Ready=True', async () => {
    const sc = await k.waitReady('kubernetes');
    expect(sc.spec?.cidrs).toEqual(['10.0.0.0/29']);
  });

  it('fills the /29, then a new ServiceCIDR extends the range once Ready', async () => {
    // A /29 has 6 usable IPs; kubernetes.default holds the first.
    for (let i = 0; i < 5; i++) await k.services.create(makeService(`fill-${i}`), { namespace: ns });
    await expect(k.services.create(makeService('one-too-many'), { namespace: ns })).rejects.toThrow(
      /range is full/,
    );

    await k.cidrs.create(makeServiceCIDR('extra-10-168', '10.168.0.0/24'));
    await k.waitReady('extra-10-168');
    // The apiserver allocators only hand out IPs from Ready ranges; allow them a moment to notice.
    const first = await waitFor(() => k.services.create(makeService('extended-0'), { namespace: ns }), {
      description: 'a Service to get an IP from the new range',
    });
    expect(first.spec?.clusterIP).toMatch(/^10\.168\.0\./);
    for (let i = 1; i < 140; i++) {
      const svc = await k.services.create(makeService(`extended-${i}`), { namespace: ns });
      expect(svc.spec?.clusterIP).toMatch(/^10\.168\.0\./);
    }
  }, 120_000);

  it('a ServiceCIDR equal to the default range becomes Ready and, when deleted, goes away (covered)', async () => {
    await k.cidrs.create(makeServiceCIDR('same-as-default', '10.0.0.0/29'));
    await k.waitReady('same-as-default');
    await k.deleteAndExpectGoneAfterGrace('same-as-default');
  }, 90_000);

  it('migration: deleting the default `kubernetes` ServiceCIDR keeps it, Ready=False, while IPs depend on it only', async () => {
    await k.cidrs.delete('kubernetes');
    const terminating = await k.waitTerminating('kubernetes');
    expect(readyCondition(terminating)).toMatchObject({
      status: 'False',
      reason: 'Terminating',
      message: TERMINATING_MESSAGE,
    });
    expect(terminating.metadata.finalizers).toContain(FINALIZER);
    const requested = Date.parse(terminating.metadata.deletionTimestamp!);

    // Still held well past the grace period: blocked by kubernetes.default and fill-*.
    await sleep(Math.max(0, requested + GRACE_MS + 2000 - Date.now()));
    const held = await k.cidrs.get('kubernetes');
    expect(held.metadata.finalizers).toContain(FINALIZER);
    expect(readyCondition(held)?.status).toBe('False');

    // Allocators skip a range being deleted: new Services land in the other range.
    const moved = await k.services.create(makeService('after-migration'), { namespace: ns });
    expect(moved.spec?.clusterIP).toMatch(/^10\.168\.0\./);

    // A new range covering the old one releases it (the add event fans out to overlapping
    // ranges; nothing else would bring the blocked one back).
    await k.cidrs.create(makeServiceCIDR('covers-default', '10.0.0.0/24'));
    await waitFor(
      async () => {
        const sc = await getOrUndefined(k.cidrs, 'kubernetes');
        return !sc || sc.metadata.uid !== terminating.metadata.uid;
      },
      { description: 'the old default ServiceCIDR to go', timeoutMs: 60_000 },
    );
    // kube-apiserver recreates its default ServiceCIDR; the controller protects the new one too.
    const recreated = await k.waitReady('kubernetes');
    expect(recreated.metadata.uid).not.toBe(terminating.metadata.uid);
  }, 120_000);
});

// ---- the /24 covered by a /16, on the shared control plane ----

describe('service-cidr-controller, shared control plane', () => {
  let kcm: TsKcmProcess;
  let k: Cluster;
  let ns: string;
  const small = uniqueName('scidr-24');
  const big = uniqueName('scidr-16');

  beforeAll(async () => {
    const kubeconfig = testKubeconfigPath();
    k = new Cluster(clientFor(kubeconfig));
    ns = await createTestNamespace('servicecidr');
    kcm = startController(kubeconfig);
  }, 120_000);

  afterAll(async () => {
    await kcm?.stop();
    keepLog('shared', kcm);
    if (ns) await deleteNamespace(ns);
    // Leave nothing behind on the shared plane even if a step failed.
    for (const name of [small, big]) {
      const sc = await getOrUndefined(k.cidrs, name).catch(() => undefined);
      if (!sc) continue;
      await k.cidrs
        .patch(
          name,
          { metadata: { '$deleteFromPrimitiveList/finalizers': [FINALIZER] } },
          { type: 'strategic' },
        )
        .catch(() => undefined);
      await k.cidrs.delete(name).catch(() => undefined);
    }
  }, 60_000);

  it('/24 goes when a /16 covers it; the /16 waits for the Service holding its IP, and for 10 s', async () => {
    await k.cidrs.create(makeServiceCIDR(small, '10.100.0.0/24'));
    await k.waitReady(small);

    // The allocators may need a moment to notice the new Ready range; creation errors count as "not yet".
    const svc = await waitFor(
      () => k.services.create(makeService('holder', '10.100.0.10'), { namespace: ns }),
      {
        description: 'a Service with an IP in the /24',
      },
    );
    expect(svc.spec?.clusterIP).toBe('10.100.0.10');
    await waitFor(() => getOrUndefined(k.ips, '10.100.0.10'), { description: 'IPAddress 10.100.0.10' });

    await k.cidrs.create(makeServiceCIDR(big, '10.100.0.0/16'));
    await k.waitReady(big);

    // The /16 covers the /24, so the /24 may go, but only after the grace period.
    await k.deleteAndExpectGoneAfterGrace(small);

    // The /16 is the only range left holding 10.100.0.10: it must stay, Ready=False.
    await k.cidrs.delete(big);
    const blocked = await k.waitTerminating(big);
    expect(readyCondition(blocked)).toMatchObject({
      status: 'False',
      reason: 'Terminating',
      message: TERMINATING_MESSAGE,
    });
    expect(blocked.metadata.finalizers).toContain(FINALIZER);
    await sleep(2000);
    expect((await k.cidrs.get(big)).metadata.finalizers).toContain(FINALIZER);

    // Delete the Service: its IPAddress goes, and that event releases the /16.
    const serviceDeletedAt = Date.now();
    await k.services.delete('holder', { namespace: ns });
    const { deletionTimestamp, goneAt, earlyReleases } = await k.waitGone(big);
    expect(deletionTimestamp).toBe(Date.parse(blocked.metadata.deletionTimestamp!));
    expect(earlyReleases).toEqual([]);
    expect(goneAt).toBeGreaterThan(serviceDeletedAt);
    expect(goneAt).toBeGreaterThanOrEqual(deletionTimestamp + GRACE_MS);
  }, 120_000);
});
