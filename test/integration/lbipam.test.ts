/**
 * service-lb-ipam-controller against the real kube-apiserver of the run (ts-kcm spawned as a
 * process, only this controller). Every check reads the apiserver's state, never ts-kcm's.
 *
 * Pools are cluster-scoped and the control plane is shared, so each pool here has its own
 * range: 192.168.x/24s that nothing else uses, and one that overlaps the ServiceCIDR
 * 10.0.0.0/24 on purpose.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import type { IPAddress, KubeObject } from '../../lib/api/index.js';
import type { KubeClient } from '../../lib/client/index.js';
import { startControlPlane } from '../../lib/testing.js';
import {
  createKubeClient,
  isAlreadyExists,
  isNotFound,
  loadKubeConfig,
  Resources,
} from '../../lib/client/index.js';
import {
  IPS_ANNOTATION,
  LB_CLASS,
  LB_FINALIZER,
  loadBalancerIPPools,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  RELEASED_LABEL,
  type LBService,
  type LoadBalancerIPPool,
} from '../../controllers/lbipam/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
  type TsKcmProcess,
} from '../support/cluster.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CRD_FILE = join(repoRoot, 'manifests', 'crds', 'lb.ts-kcm.io_loadbalancerippools.yaml');
const HOLD_MS = 5_000;
const DEFAULT_LIMITS = ['--kube-api-qps=20', '--kube-api-burst=30'];

let client: ReturnType<typeof createKubeClient>;
let ns: string;
const started: TsKcmProcess[] = [];
const pools: string[] = [];

function startLBIPAM(extra: string[] = []): TsKcmProcess {
  const p = startTsKcm([
    'run',
    '--controllers=service-lb-ipam-controller',
    '--metrics-bind-address=0',
    '--health-probe-bind-address=0',
    `--lb-ipam-release-hold=${HOLD_MS / 1000}s`,
    '--kube-api-qps=200',
    '--kube-api-burst=400',
    ...(extra.some((a) => a.startsWith('--leader-elect')) ? [] : ['--leader-elect=false']),
    ...extra,
  ]);
  started.push(p);
  return p;
}

async function stopAll(): Promise<void> {
  await Promise.all(started.map((p) => p.stop('SIGKILL').catch(() => undefined)));
}

async function installCRD(on: KubeClient = client): Promise<void> {
  const crd = load(readFileSync(CRD_FILE, 'utf8')) as KubeObject;
  const crds = on.resource({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  });
  try {
    await crds.create(crd);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  await waitFor(
    async () => {
      const c = (await crds.get(crd.metadata.name!)) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True');
    },
    { description: 'the LoadBalancerIPPool CRD to be Established' },
  );
  // Discovery and the new resource's storage take a moment after Established.
  await waitFor(
    () =>
      on
        .resource(loadBalancerIPPools)
        .list()
        .then(() => true),
    { description: 'pools listable' },
  );
}

async function createPool(
  addresses: string[],
  spec: Partial<LoadBalancerIPPool['spec']> = {},
): Promise<string> {
  const name = uniqueName('lbpool');
  pools.push(name);
  await client.resource<LoadBalancerIPPool>(loadBalancerIPPools).create({
    apiVersion: 'lb.ts-kcm.io/v1alpha1',
    kind: 'LoadBalancerIPPool',
    metadata: { name },
    spec: { addresses, ...spec },
  });
  return name;
}

/** A Service of our class; `pool` pins it to that pool (the run's pools would otherwise all match). */
function lbService(
  name: string,
  pool: string,
  extra: Partial<LBService['spec']> = {},
  more: Record<string, string> = {},
): LBService {
  const annotations = { 'lb.ts-kcm.io/address-pool': pool, ...more };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, annotations },
    spec: {
      type: 'LoadBalancer',
      loadBalancerClass: LB_CLASS,
      allocateLoadBalancerNodePorts: false,
      ports: [{ port: 80, targetPort: 80 }],
      ...extra,
    },
  };
}

const services = () => client.resource<LBService>(Resources.services);
const ipAddresses = () => client.resource<IPAddress>(Resources.ipAddresses);

async function ingressIPs(name: string): Promise<string[]> {
  const s = await services().get(name, ns);
  return (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

async function waitForIP(name: string, timeoutMs = 30_000): Promise<string> {
  return waitFor(async () => (await ingressIPs(name))[0], {
    timeoutMs,
    description: `an ingress IP on ${name}`,
  });
}

async function ourAddresses(): Promise<IPAddress[]> {
  return (await ipAddresses().list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` })).items;
}

/**
 * The invariants, from the apiserver: every LB Service of this namespace with an ingress IP
 * has exactly the IPAddress of ours naming it, no IPAddress of ours (not released) lacks a
 * live Service whose status lists it, and no IP belongs to two objects (the names guarantee
 * that; a ClusterIP equal to an LB IP would break it, so it is checked too).
 */
async function checkInvariants(): Promise<Map<string, string>> {
  const svcs = (await services().list({ namespace: ns })).items;
  const ours = (await ourAddresses()).filter((a) => a.spec?.parentRef?.namespace === ns);
  const byName = new Map(svcs.map((s) => [s.metadata.name!, s]));
  const ipOf = new Map<string, string>();
  const problems: string[] = [];
  for (const s of svcs) {
    const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip!);
    if (ips.length > 1) problems.push(`${s.metadata.name} has ${ips.length} ingress IPs`);
    for (const ip of ips) {
      const a = ours.find((x) => x.metadata.name === ip);
      if (!a || a.spec?.parentRef?.name !== s.metadata.name || a.metadata.labels?.[RELEASED_LABEL])
        problems.push(`${s.metadata.name} shows ${ip} without its IPAddress`);
      ipOf.set(s.metadata.name!, ip);
    }
  }
  for (const a of ours) {
    if (a.metadata.labels?.[RELEASED_LABEL]) continue;
    const s = byName.get(a.spec?.parentRef?.name ?? '');
    if (!s) problems.push(`orphan IPAddress ${a.metadata.name} (no Service ${a.spec?.parentRef?.name})`);
    else if (!(s.status?.loadBalancer?.ingress ?? []).some((i) => i.ip === a.metadata.name))
      problems.push(`IPAddress ${a.metadata.name} of ${s.metadata.name} is not in its status`);
  }
  const perService = new Map<string, number>();
  for (const a of ours.filter((x) => !x.metadata.labels?.[RELEASED_LABEL]))
    perService.set(a.spec!.parentRef!.name, (perService.get(a.spec!.parentRef!.name) ?? 0) + 1);
  for (const [svc, n] of perService) if (n > 1) problems.push(`duplicate: ${svc} owns ${n} IPAddresses`);
  for (const s of svcs)
    for (const ip of (s.spec?.clusterIPs as string[] | undefined) ?? [])
      if ([...ipOf.values()].includes(ip)) problems.push(`${ip} is both a ClusterIP and an LB IP`);
  expect(problems).toEqual([]);
  return ipOf;
}

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 200, burst: 400 });
  await installCRD();
  ns = await createTestNamespace('lbipam');
}, 60_000);

afterAll(async () => {
  for (const [i, p] of started.entries()) writeFileSync(join(tmpdir(), `ts-kcm-lbipam-${i}.log`), p.output()); // for a post-mortem
  await stopAll();
  // Leave nothing that holds addresses for the rest of the run: finalizers off, pools gone.
  for (const s of (await services().list({ namespace: ns })).items)
    if (s.metadata.finalizers?.length)
      await services()
        .patch(s.metadata.name!, { metadata: { finalizers: null } }, { type: 'merge', namespace: ns })
        .catch(() => undefined);
  for (const a of await ourAddresses())
    if (a.spec?.parentRef?.namespace === ns)
      await ipAddresses()
        .delete(a.metadata.name!)
        .catch(() => undefined);
  for (const p of pools)
    await client
      .resource(loadBalancerIPPools)
      .delete(p)
      .catch(() => undefined);
  await deleteNamespace(ns);
  await client.close();
}, 60_000);

describe('service-lb-ipam-controller on a real apiserver', () => {
  it('allocates from a pool, keeps pool status, releases with the hold, then hands the IP to a pending Service', async () => {
    const kcm = startLBIPAM();
    const pool = await createPool(['192.168.50.0/31']);
    await services().create(lbService('a', pool));
    await services().create(lbService('b', pool));
    expect(await waitForIP('a')).toMatch(/^192\.168\.50\.[01]$/);
    await waitForIP('b');
    expect(new Set([...(await ingressIPs('a')), ...(await ingressIPs('b'))])).toEqual(
      new Set(['192.168.50.0', '192.168.50.1']),
    );
    const a = await services().get('a', ns);
    expect(a.metadata.finalizers).toContain(LB_FINALIZER);
    expect(a.status?.loadBalancer?.ingress?.[0]?.ipMode).toBe('VIP');

    const status = await waitFor(
      async () => {
        const p = await client.resource<LoadBalancerIPPool>(loadBalancerIPPools).get(pool);
        return p.status?.allocated?.ipv4 === 2 ? p.status : undefined;
      },
      { description: 'pool status allocated=2' },
    );
    expect(status.available).toEqual({ ipv4: '0', ipv6: '0' });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const table = await kubectl(['--kubeconfig', testKubeconfigPath(), 'get', 'lbpool', pool]);
    expect(table.stdout).toMatch(/IPV4 USED\s+IPV4 FREE/);

    // Exhausted: c waits, with an event a user can act on.
    await services().create(lbService('c', pool));
    await waitFor(
      async () =>
        (await client.resource(Resources.events).list({ namespace: ns })).items.some(
          (e) =>
            (e as { reason?: string }).reason === 'AllocationFailed' && JSON.stringify(e).includes('"c"'),
        ),
      { description: 'an AllocationFailed event for c' },
    );
    const freed = (await ingressIPs('a'))[0]!;
    await services().delete('a', { namespace: ns });
    const held = await waitFor(
      async () => {
        const ip = await ipAddresses().get(freed);
        return ip.metadata.labels?.[RELEASED_LABEL] === 'true' ? ip : undefined;
      },
      { description: `${freed} relabelled as released` },
    );
    expect(held.spec?.parentRef?.name).toBe('a');
    await waitFor(
      () =>
        services()
          .get('a', ns)
          .then(() => false, isNotFound),
      { description: 'a gone' },
    );
    expect(await waitForIP('c', 30_000)).toBe(freed);
    // c's IPAddress was created after the hold ended (creationTimestamp has whole seconds).
    const releasedAt = Date.parse(held.metadata.annotations!['lb.ts-kcm.io/released-at']!);
    const taken = await ipAddresses().get(freed);
    expect(taken.spec?.parentRef?.name).toBe('c');
    expect(Date.parse(taken.metadata.creationTimestamp!) + 1_000).toBeGreaterThan(releasedAt + HOLD_MS);
    await checkInvariants();
    await kcm.stop('SIGTERM');
  }, 60_000);

  it('a pool overlapping the ServiceCIDR never shares an IP with a ClusterIP, and the apiserver repair leaves ours alone', async () => {
    const kcm = startLBIPAM();
    // 10.0.0.0/24 is the test control plane's ServiceCIDR, shared with every other test's
    // Services: take four consecutive addresses that no IPAddress holds yet.
    const taken = new Set((await ipAddresses().list()).items.map((a) => a.metadata.name));
    const base = [...Array(60).keys()]
      .map((i) => 190 + i)
      .find((b) => [0, 1, 2, 3].every((d) => !taken.has(`10.0.0.${b + d}`)));
    if (base === undefined) throw new Error('no four free consecutive addresses in 10.0.0.190-253');
    const ip = (d: number) => `10.0.0.${base + d}`;
    const clusterFirst = await services().create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'cip-first', namespace: ns },
      spec: { clusterIP: ip(0), ports: [{ port: 80 }] },
    } as LBService);
    expect(clusterFirst.spec?.clusterIP).toBe(ip(0));
    const pool = await createPool([`${ip(0)}-${ip(3)}`]);
    await services().create(lbService('over-1', pool));
    expect(await waitForIP('over-1')).toBe(ip(1)); // the first is the ClusterIP's
    // A ClusterIP asking for our IP is refused by the apiserver: the IPAddress name is taken.
    await expect(
      services().create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'cip-second', namespace: ns },
        spec: { clusterIP: ip(1), ports: [{ port: 80 }] },
      } as LBService),
    ).rejects.toThrow(/already allocated|provided IP is already allocated|already exists/i);
    await services().create(lbService('over-2', pool));
    const over2 = await waitForIP('over-2');
    // Dynamic ClusterIPs created afterwards never land on an LB IP. (Created before over-2,
    // they could take the pool's last free addresses, which is allowed and would starve it.)
    const dynamic = await Promise.all(
      [...Array(12).keys()].map((i) =>
        services().create({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `cip-${i}`, namespace: ns },
          spec: { ports: [{ port: 80 }] },
        } as LBService),
      ),
    );
    for (const svc of dynamic) expect([ip(1), over2]).not.toContain(svc.spec?.clusterIP);
    // The repair loop of kube-apiserver runs on IPAddress events and on its interval; give it
    // a few seconds, then our IPAddresses must be untouched and no repair event name them.
    await new Promise((r) => setTimeout(r, 5_000));
    const ours = (await ourAddresses()).filter((a) => a.spec?.parentRef?.namespace === ns);
    for (const svc of ['over-1', 'over-2']) {
      const ip = (await ingressIPs(svc))[0]!;
      const a = ours.find((x) => x.metadata.name === ip)!;
      expect(a.metadata.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY);
    }
    const events = (await client.resource(Resources.events).list({ namespace: '' })).items as (KubeObject & {
      reason?: string;
      involvedObject?: { kind?: string; name?: string };
      regarding?: { kind?: string; name?: string };
    })[];
    const aboutOurs = events.filter((e) => {
      const ref = e.involvedObject ?? e.regarding;
      return ref?.kind === 'IPAddress' && ours.some((a) => a.metadata.name === ref.name);
    });
    expect(aboutOurs.map((e) => e.reason)).toEqual([]);
    await checkInvariants();
    await kcm.stop('SIGTERM');
  }, 60_000);

  it('SIGKILL mid-churn and restart: no duplicate, no orphan, no IP changed', async () => {
    const pool = await createPool(['192.168.51.0/24']);
    // The default client limits make the churn last seconds, so the kill lands in the middle.
    let kcm = startLBIPAM(DEFAULT_LIMITS);
    const names = [...Array(30).keys()].map((i) => `churn-${i}`);
    const creating = Promise.all(names.map((n) => services().create(lbService(n, pool))));
    await waitFor(
      async () =>
        (await ourAddresses()).filter((a) => a.metadata.name?.startsWith('192.168.51.')).length >= 8,
      {
        description: 'some allocations before the kill',
      },
    );
    await kcm.stop('SIGKILL');
    await creating;
    // What the apiserver says each Service has at the moment of the kill.
    const before = new Map<string, string>();
    for (const n of names) {
      const ip = (await ingressIPs(n))[0];
      if (ip) before.set(n, ip);
    }
    await Promise.all(names.slice(0, 5).map((n) => services().delete(n, { namespace: ns })));
    kcm = startLBIPAM();
    await waitFor(
      async () => {
        for (const n of names.slice(5)) if ((await ingressIPs(n)).length === 0) return false;
        return true;
      },
      { timeoutMs: 40_000, description: 'every remaining Service allocated after the restart' },
    );
    const after = await checkInvariants();
    for (const [n, ip] of before)
      if (!names.slice(0, 5).includes(n)) expect([n, after.get(n)]).toEqual([n, ip]);
    await kcm.stop('SIGTERM');
  }, 90_000);

  it('two replicas with leader election, the leader SIGKILLed during churn: the same invariants', async () => {
    const pool = await createPool(['192.168.52.0/24']);
    const lease = uniqueName('lbipam');
    const args = [
      '--leader-elect=true',
      `--leader-elect-resource-name=${lease}`,
      '--leader-elect-resource-namespace=default',
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline=3s',
      '--leader-elect-retry-period=500ms',
    ];
    const r1 = startLBIPAM([...args, ...DEFAULT_LIMITS]);
    await r1.waitForOutput(/successfully acquired lease/, 30_000);
    const r2 = startLBIPAM(args);
    const names = [...Array(20).keys()].map((i) => `ha-${i}`);
    const creating = Promise.all(names.map((n) => services().create(lbService(n, pool))));
    await waitFor(
      async () =>
        (await ourAddresses()).filter((a) => a.metadata.name?.startsWith('192.168.52.')).length >= 5,
      {
        description: 'some allocations by the first leader',
      },
    );
    await r1.stop('SIGKILL');
    await creating;
    const before = new Map<string, string>();
    for (const n of names) {
      const ip = (await ingressIPs(n))[0];
      if (ip) before.set(n, ip);
    }
    await r2.waitForOutput(/successfully acquired lease/, 30_000);
    await waitFor(
      async () => {
        for (const n of names) if ((await ingressIPs(n)).length === 0) return false;
        return true;
      },
      { timeoutMs: 40_000, description: 'every Service allocated by the new leader' },
    );
    const after = await checkInvariants();
    for (const [n, ip] of before) expect([n, after.get(n)]).toEqual([n, ip]);
    await r2.stop('SIGTERM');
  }, 90_000);
});

describe('without the LoadBalancerIPPool CRD', () => {
  it('says so once, leaves the others and /readyz alone, and starts when the CRD appears', async () => {
    // A private control plane: the run's shared one has the CRD installed already.
    const cp = await startControlPlane({});
    const kcm = startTsKcm(
      ['run', '--leader-elect=false', '--metrics-bind-address=0', '--health-probe-bind-address=127.0.0.1:0'],
      { kubeconfig: cp.kubeconfigPath },
    );
    started.push(kcm);
    try {
      const waits =
        /service-lb-ipam-controller waits for lb.ts-kcm.io\/v1alpha1 loadbalancerippools: the API server does not serve it \(is the CRD installed\?\)/g;
      await kcm.waitForOutput(waits, 60_000);
      const m = await kcm.waitForOutput(/"address":"([^"]+)"[^\n]*"message":"serving health probes"/);
      // The other controllers run: service-cidr-controller finalizes the default ServiceCIDR.
      await waitFor(
        async () =>
          (await cp.client.resource(Resources.serviceCIDRs).get('kubernetes')).metadata.finalizers?.includes(
            'networking.k8s.io/service-cidr-finalizer',
          ),
        { description: 'service-cidr-controller at work' },
      );
      await waitFor(async () => (await fetch(`http://${m[1]}/readyz`)).status === 200, {
        description: '/readyz 200',
      });
      await installCRD(cp.client);
      const pool = uniqueName('lbpool');
      await cp.client.resource(loadBalancerIPPools).create({
        apiVersion: 'lb.ts-kcm.io/v1alpha1',
        kind: 'LoadBalancerIPPool',
        metadata: { name: pool },
        spec: { addresses: ['192.168.60.0/30'] },
      } as LoadBalancerIPPool);
      await cp.client.resource(Resources.services).create({
        ...lbService('late', pool),
        metadata: {
          name: 'late',
          namespace: 'default',
          annotations: { 'lb.ts-kcm.io/address-pool': pool },
        },
      });
      await waitFor(
        async () =>
          (await cp.client.resource<LBService>(Resources.services).get('late', 'default')).status
            ?.loadBalancer?.ingress?.[0]?.ip === '192.168.60.0',
        { timeoutMs: 60_000, description: 'an IP once the CRD is there' },
      );
      expect(kcm.output().match(waits)).toHaveLength(1);
      await kcm.stop('SIGTERM');
    } finally {
      await kcm.stop('SIGKILL').catch(() => undefined);
      await cp.stop();
    }
  }, 120_000);
});

// A requested IP and the annotation path, cheap enough to ride along.
describe('requested addresses', () => {
  it('honours lb.ts-kcm.io/load-balancer-ips', async () => {
    const pool = await createPool(['192.168.53.0/28']);
    const kcm = startLBIPAM();
    await services().create(lbService('asks', pool, {}, { [IPS_ANNOTATION]: '192.168.53.9' }));
    expect(await waitForIP('asks')).toBe('192.168.53.9');
    await kcm.stop('SIGTERM');
  }, 30_000);
});
